#!/usr/bin/env bash
# Installs everything the test suite needs, idempotently, at the versions in the lock files: the
# package with its test extras (requirements.lock), Debian's Chromium (the browser tests drive it;
# no browser is ever downloaded by a test tool), and the npm packages of the real Segment clients
# the tests run (package-lock.json beside each package.json).
set -euo pipefail
python=${1:-python3}
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi

# PIP_CONSTRAINT (not -c) so that the lock also holds in the build environment of the package.
PIP_CONSTRAINT="$PWD/requirements.lock" "$python" -m pip install --quiet -e '.[test]'

for dir in tests/e2e/node tests/browser; do
    if [ -f "$dir/package.json" ] && [ ! -d "$dir/node_modules" ]; then
        npm ci --prefix "$dir" --no-audit --no-fund --silent
    fi
done
