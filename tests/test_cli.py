"""The `collector` command as an operator runs it: check, --version, and a run that cannot start."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from collector import __version__

ROOT = Path(__file__).resolve().parents[1]


def collector(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_version():
    done = collector("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"collector {__version__}"


def test_check_of_the_example_config_passes_and_summarises_it():
    done = collector("check", "--config", "config.example.yaml")
    assert done.returncode == 0, done.stderr
    destinations = len(yaml.safe_load(Path("config.example.yaml").read_text())["destinations"])
    assert destinations >= 3
    assert done.stdout.splitlines() == [
        f"config.example.yaml: OK (2 sources, {destinations} destinations, 1 tracking plan used by 1 source,"
        " 4 PII rules)",
        "config.example.yaml: dedup: messageIds of the last 24 h, at most 10,000,000 held (about 400 MB of"
        " memory); above 116 events/s the window in force is shorter",
    ]


def test_check_says_what_an_uncapped_dedup_window_costs(tmp_path):
    config = tmp_path / "uncapped.yaml"
    config.write_text("sources:\n  web:\n    write_key: k\nstorage:\n  dedup_max_ids: 0\n  dedup_window: 30m\n")
    done = collector("check", "--config", str(config))
    assert done.returncode == 0
    assert done.stdout.splitlines()[1] == (f"{config}: dedup: every messageId of the last 30 min, no cap: about"
                                           " 0.1 MB of memory for each event/s received")


def test_check_reports_every_error_with_its_line_and_exits_1(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(textwrap.dedent("""\
        storage:
          sync: sometimes
        sources:
          web:
            write_key: wk_web
            tracking_plan: nowhere
        destinations:
          archive:
            type: fil
    """))
    done = collector("check", "--config", str(config))
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert any(re.match(rf"{re.escape(str(config))}:2:\d+: storage\.sync", line) for line in lines), lines
    assert any(re.match(rf"{re.escape(str(config))}:6:\d+: sources\.web\.tracking_plan", line) for line in lines), lines
    assert any(re.match(rf"{re.escape(str(config))}:9:\d+: destinations\.archive\.type", line) for line in lines), lines


def test_check_of_a_missing_file_says_so(tmp_path):
    done = collector("check", "--config", str(tmp_path / "absent.yaml"))
    assert done.returncode == 1
    assert "absent.yaml" in done.stderr


def test_run_with_an_invalid_config_exits_1_without_starting(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("server:\n  listen: nowhere\n")
    done = collector("run", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1
    assert "server.listen" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was created


def test_check_warns_of_a_config_without_sources(tmp_path):
    config = tmp_path / "empty.yaml"
    config.write_text("storage:\n  sync: normal\n")
    done = collector("check", "--config", str(config))
    assert done.returncode == 0
    assert "OK (0 sources, 0 destinations)" in done.stdout
    assert "warning: no sources" in done.stderr


@pytest.mark.parametrize("origins, warned", [(["*"], True), (["https://www.example.com"], False)])
def test_check_warns_of_a_server_cookie_without_listed_origins(tmp_path, origins, warned):
    config = tmp_path / "cookie.yaml"
    config.write_text(
        f"server: {{cors: {{allowed_origins: {json.dumps(origins)}}}}}\n"
        "browser: {cookie: {enabled: true}}\nsources: {web: {write_key: wk}}\n"
    )
    done = collector("check", "--config", str(config))
    assert done.returncode == 0
    assert ("browser.cookie.enabled" in done.stderr) is warned, done.stderr


def test_check_needs_a_config():
    done = collector("check")
    assert done.returncode == 2
    assert "--config" in done.stderr
