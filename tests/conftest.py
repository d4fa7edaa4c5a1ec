import pytest

from tests.support.process import CollectorProcess
from tests.support.receiver import Receiver


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def collector_factory(tmp_path):
    """Start collectors on given configs; every one is stopped (or killed) at the end."""
    started: list[CollectorProcess] = []

    def start(config: dict, name: str = "collector") -> CollectorProcess:
        process = CollectorProcess(tmp_path / name, config).start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.alive:
            try:
                process.stop(timeout=20)
            except Exception:
                process.kill()
