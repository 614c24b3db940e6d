#!/usr/bin/env bash
# Install everything the tests need (into .venv, plus Debian's chromium for the browser tests)
# and run the whole test suite. Extra arguments go to pytest.
#
#   bash test.sh            the suite
#   bash test.sh --stress   the suite while two CPU-burning processes compete for the cores, as on
#                           a busy machine: a test that only passes on an idle one fails here
set -euo pipefail
cd "$(dirname "$0")"

stress=0
if [ "${1:-}" = "--stress" ]; then
  stress=1
  shift
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

if ! command -v chromium >/dev/null 2>&1; then
  # Playwright cannot download its own browser here; the browser tests use Debian's chromium.
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "Installing chromium for the browser tests..." >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ "$stress" = 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi

burners=()
stop_burners() { [ "${#burners[@]}" = 0 ] || kill "${burners[@]}" 2>/dev/null || true; }
trap stop_burners EXIT
for _ in 1 2; do
  sh -c 'while :; do :; done' &
  burners+=("$!")
done
echo "Stress mode: two CPU burners (pids ${burners[*]}) compete with the suite." >&2
.venv/bin/python -m pytest "$@"
