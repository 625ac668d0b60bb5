#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
# Used as-is by CI (.ci/run) and by the README. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools some tests use: strace proves Codex talks only to loopback; Debian's chromium
# renders the HTML report (driven by Playwright, which never downloads a browser here).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v strace >/dev/null || missing+=(strace)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
