"""Settings, built once by an entry point (CLI or MCP server) and passed inward.

Nothing here is read at import time. The Codex binary is found, in this order:
``--codex-bin``, ``$CODEX_BIN``, the pinned ``openai-codex-cli-bin`` package, ``codex`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import platformdirs

from codex_mcp_wrapper.errors import CodexNotFound
from codex_mcp_wrapper.process import TERM_GRACE

APP_NAME = "codex-mcp-wrapper"
STATE_ENV = "CODEX_MCP_WRAPPER_HOME"
PINNED_CODEX_VERSION = "0.163.0"
# The Codex versions scripts/test.sh (and so CI) runs the real-Codex tests on: the pinned PyPI
# package, then the npm @openai/codex release it installs (its CODEX_NPM_VERSION default).
# `doctor` warns about any other version. Move together with that default.
TESTED_CODEX_VERSIONS = ("0.163.0", "0.171.0")

# Variables a worker inherits from the wrapper; everything else must be passed explicitly.
ENV_ALLOWLIST = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TERM",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)
API_KEY_VARS = ("OPENAI_API_KEY", "CODEX_API_KEY")


def default_state_dir() -> Path:
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_state_dir(APP_NAME))


# The most tasks at once on one machine (`--workers`). Measured here (bench_concurrency.py, each
# task waiting 2 s on the model, 32 threads per Codex process): 128 at once took 4.4 s and
# 0.9 GB, 256 took 6.6 s and 1.9 GB; about 7 MB per task and 240 MB per process.
MAX_WORKERS = 256


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def user_codex_home() -> Path:
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")


def wrapper_program(bare_when_on_path: bool = True) -> str:
    """This installation's ``codex-mcp-wrapper``, for a command or a config a person pastes: the
    bare name when the shell finds this very program by it (and ``bare_when_on_path``), else
    its absolute path (the console script next to the running Python, as a venv has it)."""
    name = "codex-mcp-wrapper"
    script = Path(sys.executable).parent / name
    found = shutil.which(name)
    if found and (not script.exists() or Path(found).resolve() == script.resolve()):
        return name if bare_when_on_path else str(Path(found).absolute())
    return str(script.absolute()) if script.exists() else (found or name)


def find_codex_bin(explicit: str | None = None) -> tuple[str, str]:
    """The Codex binary to run and where it came from; raises CodexNotFound."""
    candidates: list[tuple[str | None, str]] = [
        (explicit, "--codex-bin"),
        (os.environ.get("CODEX_BIN"), "$CODEX_BIN"),
    ]
    for value, origin in candidates:
        if value:
            path = shutil.which(value) or value
            if Path(path).is_file() and os.access(path, os.X_OK):
                return str(Path(path).resolve()), origin
            raise CodexNotFound(
                f"the Codex binary given by {origin} ({value}) does not exist or is not "
                "executable; fix the path or unset it."
            )
    try:
        import codex_cli_bin  # type: ignore[import-untyped]

        bundled = Path(codex_cli_bin.bundled_codex_path())
        if bundled.is_file():
            return str(bundled), f"openai-codex-cli-bin {PINNED_CODEX_VERSION}"
    except (ImportError, AttributeError, OSError):
        pass
    on_path = shutil.which("codex")
    if on_path:
        return on_path, "PATH"
    raise CodexNotFound(
        "no Codex binary found; install it with "
        f"`pip install openai-codex-cli-bin=={PINNED_CODEX_VERSION}` "
        "(or `pip install 'codex-mcp-wrapper[codex]'`), or point --codex-bin / $CODEX_BIN at one."
    )


@dataclass(frozen=True)
class Timeouts:
    """Every bound on a wait for another process, in seconds, and why it is that long.

    Built once with the settings; tests inject shorter ones instead of waiting out the defaults.
    """

    handshake: float = 20.0  # app-server spawn to `initialize` answered: 0.07 s measured; slack
    request: float = 30.0  # a JSON-RPC request other than a turn (thread/start, turn/start)
    interrupt_grace: float = 5.0  # an interrupted turn must end this soon or the worker is killed
    mcp_start: float = 60.0  # a task's MCP servers must be ready (their startup_timeout_sec wins)
    unload: float = 5.0  # letting Codex unload a finished thread; best effort
    term_grace: float = TERM_GRACE  # closing a child's stdin, then SIGTERM, then SIGKILL
    approval: float = 120.0  # a person asked about an approval; then the fallback decides
    progress: float = 5.0  # an MCP call with no news sends a progress notification this often
    cancel: float = 30.0  # a cancelled run's turns stopping before `cancel` reports back
    # A request to the process driving another run (a steer: it waits on Codex for up to
    # ``request`` itself); then the run counts as not reachable.
    control: float = 45.0
    label_lock: float = 300.0  # a worker holding a thread to continue, busy in another run
    # Codex retrying a model it cannot reach ("Reconnecting... waiting for network": connection
    # refused, no DNS) with no answer from the model for this long fails the task, naming the
    # URL, rather than letting it wait out idle_timeout_sec / timeout_sec. Measured on 0.163.0:
    # Codex retries a refused connection forever, 5, 10, 20, 25 s apart (the first two fit).
    model_unreachable: float = 25.0
    retry_backoff: tuple[float, ...] = (0.5, 2.0, 5.0)  # between attempts of a task


# Measured (bench/bench_concurrency.py, N tasks each waiting 2 s on the model, vs one bare
# app-server running them as threads). N=32: 1 thread per process took x2.09 the time and x13.7
# the memory, 8 took x1.13 and x2.28, 16 x1.05 and x1.37, 32 x1.04 and x0.98. N=128: 16 took
# x1.02 and 2.3 GB (x2.16), 32 x0.80 and 1.7 GB (x1.60). A crashed process takes down at most
# this many turns (each is retried per its task's retries).
DEFAULT_THREADS_PER_WORKER = 32


@dataclass(frozen=True)
class Recycling:
    """When a Codex worker is retired (stopped once idle, then started afresh on the same
    CODEX_HOME, so its threads can still be resumed). An app-server grows about 1.2 MB per
    thread it has run (measured on 0.163.0) and never gives it back; 0 turns a limit off."""

    max_threads: int = 200  # threads run by one process; ~250 MB of growth at the measured rate
    max_rss_mb: int = 1024  # the process tree's resident memory (a fresh one uses 140-270 MB)


TEMPORAL_ENV = "CODEX_MCP_WRAPPER_TEMPORAL"
SHARED_DIR_ENV = "CODEX_MCP_WRAPPER_SHARED_DIR"
DEFAULT_TASK_QUEUE = "codex-tasks"


def default_shared_dir() -> Path:
    explicit = os.environ.get(SHARED_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME)) / "shared"


@dataclass(frozen=True)
class TemporalSettings:
    """Where missions run when they scale out: a Temporal server's address (HOST:PORT), its
    namespace, the task queue hosts poll, and the directory every host and submitter
    mount (events, artifacts, rollouts and missions travel through it; see
    docs/scale-out.md)."""

    address: str
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    shared_dir: Path = field(default_factory=default_shared_dir)
    # An attempt continuing a thread waits this long for the host holding it, then goes to
    # any host (which resumes the thread from its rollout in the shared store).
    affinity_wait: float = 10.0
    # A server that went away (a restart takes seconds, a move to another machine minutes):
    # a submitter waits this long for it, then stops watching (the run goes on); a host holds
    # a finished attempt's result this long (one given up would run the task again).
    reconnect_within: float = 300.0
    # Start the workflow and return at once (`run --detach`).
    detach: bool = False
    # What an interrupted submitter does: cancel the workflow on every host, stop watching
    # it ("detach"), or ask on the terminal ("ask"; the CLI's choice when it has one).
    on_interrupt: Literal["cancel", "detach", "ask"] = "cancel"


@dataclass(frozen=True)
class Settings:
    state_dir: Path = field(default_factory=default_state_dir)
    codex_bin: str | None = None
    workers: int = field(default_factory=default_workers)
    scripted: bool = False
    sync_codex_config: bool = False
    mirror_auth: bool = False
    pass_env: tuple[str, ...] = ()
    approvals: Literal["decline", "accept"] = "decline"
    variables: dict[str, str] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    recycling: Recycling = field(default_factory=Recycling)
    # Threads (tasks) one Codex process runs at once; ``workers`` tasks need
    # ceil(workers / threads_per_worker) processes. See docs/running.md, "Workers".
    threads_per_worker: int = DEFAULT_THREADS_PER_WORKER
    # The MCP server's codex/codex-reply tools stream the removed codex mcp-server's
    # non-standard `codex/event` notifications (its clients read the thread id from them).
    codex_events: bool = True
    # Under `scripted`, the script the model plays for codex/codex-reply calls (else: echo).
    script: Path | None = None
    # The user's Codex home that sync_codex_config and mirror_auth read (None: $CODEX_HOME,
    # else ~/.codex).
    codex_home: Path | None = None
    # MCP clients may send missions with hooks and tools (commands run on this machine,
    # outside Codex's sandbox): off unless `serve --allow-mission-commands`.
    mission_commands: bool = False
    # Record each model exchange of a run (through a proxy in front of its provider) into
    # the run folder's recording.jsonl, from which `run --record` writes a cassette.
    record: bool = False
    # With ``record``: every run also writes its cassette here as MISSION-RUN_ID.yaml
    # (`serve --record DIR`; `run --record FILE` writes its one cassette itself).
    record_dir: Path | None = None
    # Run missions as Temporal workflows on hosts instead of on this machine.
    temporal: TemporalSettings | None = None
    # A mission that does not say `login_shell` runs Codex's commands in login shells
    # (`run --login-shell`, `serve --login-shell`); see TaskSettings.login_shell.
    login_shell: bool = False
    # Leave the worktrees of `isolation: worktree` tasks (and their branches) in place when a
    # run ends (`run --keep-worktrees`); `runs show` lists them.
    keep_worktrees: bool = False

    def user_codex_home(self) -> Path:
        return self.codex_home or user_codex_home()

    def worker_base_env(self) -> dict[str, str]:
        """A worker's environment: the allowlist and ``pass_env``. No API key: app-server logs
        in from its home's auth.json, and a provider's ``env_key`` is added for its workers
        alone, so the commands Codex runs never find a credential they need not have."""
        env = {k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ}
        for name in self.pass_env:
            if name in os.environ:
                env[name] = os.environ[name]
        no_proxy = os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))
        env["NO_PROXY"] = env["no_proxy"] = ",".join(
            p for p in (no_proxy, "127.0.0.1,localhost") if p
        )
        return env
