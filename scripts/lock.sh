#!/usr/bin/env bash
# Re-locks the Python dependencies: installs the package with its test extras, unconstrained, into a
# throw-away virtualenv (so each gets the newest release pyproject.toml's ranges allow) and writes
# the exact versions to requirements.lock. Then run `make clean test` to prove the suite on them
# before committing the new lock. npm packages are locked by package-lock.json (`npm update`).
set -euo pipefail
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip setuptools
"$venv/bin/python" -m pip install --quiet -e '.[test]'
{
    echo "# Exact versions of every runtime and test dependency, as tested; used by make run, make test"
    echo "# and CI (through PIP_CONSTRAINT). Regenerate with scripts/lock.sh, then run make clean test."
    "$venv/bin/python" -m pip freeze --all --exclude-editable | grep -v '^-e '
} > requirements.lock
echo "requirements.lock: $(grep -vc '^#' requirements.lock) packages"
