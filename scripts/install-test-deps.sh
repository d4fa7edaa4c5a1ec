#!/usr/bin/env bash
# Installs everything the test suite needs, idempotently: the package with its test extras, Debian's
# Chromium (the browser tests drive it; no browser is ever downloaded by a test tool), and the npm
# packages of the real Segment clients the tests run.
set -euo pipefail
python=${1:-python3}
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi

"$python" -m pip install --quiet -e '.[test]'

for dir in tests/e2e/node tests/browser; do
    if [ -f "$dir/package.json" ] && [ ! -d "$dir/node_modules" ]; then
        npm install --prefix "$dir" --no-audit --no-fund --silent
    fi
done
