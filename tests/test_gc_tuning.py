"""The collector and its log writer tune Python's garbage collector once started (see
collector/gc_tuning.py for the measurements)."""

import subprocess
import sys

from collector.gc_tuning import YOUNG_THRESHOLD


def test_tuning_freezes_what_start_up_allocated_and_raises_the_young_threshold():
    code = (
        "import gc\n"
        "from collector.gc_tuning import tune_for_serving\n"
        "kept = [dict(n=i) for i in range(1000)]\n"
        "before = gc.get_threshold()\n"
        "tune_for_serving()\n"
        "print(before[0], gc.get_threshold()[0], gc.get_freeze_count() >= 1000, gc.get_threshold()[1:] == before[1:])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["700", str(YOUNG_THRESHOLD), "True", "True"]


def test_cycles_are_still_collected_after_tuning():
    code = (
        "import gc, weakref\n"
        "from collector.gc_tuning import tune_for_serving, YOUNG_THRESHOLD\n"
        "tune_for_serving()\n"
        "class Node: pass\n"
        "first = Node(); first.me = first; probe = weakref.ref(first); del first\n"
        "for _ in range(YOUNG_THRESHOLD * 2):\n"
        "    a = Node(); a.me = a\n"
        "print(probe() is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True"]
