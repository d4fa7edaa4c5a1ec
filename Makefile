# Two commands on a fresh Debian/Ubuntu machine with Python >= 3.11:
#   make run    the collector on its embedded defaults (http://127.0.0.1:8088, write key dev_write_key)
#   make test   installs what the tests need (apt, pip, npm), then runs the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test bench install install-test lock clean

# Every install goes through requirements.lock: the exact versions the suite passed with.
export PIP_CONSTRAINT := $(CURDIR)/requirements.lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	scripts/install-test-deps.sh $(BIN)/python

run: install
	$(BIN)/collector run $(if $(CONFIG),--config $(CONFIG))

test: install-test
	$(BIN)/python -m pytest -q

bench: install-test
	scripts/install-bench-deps.sh
	$(BIN)/python -m benchmarks

lock:
	scripts/lock.sh

clean:
	rm -rf $(VENV) data build *.egg-info
