"""``WorkerSpec``: everything a ``codex app-server`` worker is started with (binary, its own
CODEX_HOME, environment, log, deadlines), built by the backend's worker factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from codex_mcp_wrapper.settings import Timeouts


@dataclass(frozen=True)
class WorkerSpec:
    label: str
    codex_bin: str
    codex_home: Path
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Variables of ``env`` the commands Codex runs must not see (the provider's credential):
    # excluded by every thread's shell_environment_policy.
    hidden_env: tuple[str, ...] = ()
    # Files of this run's credentials in ``codex_home`` (an API key's auth.json), removed when
    # the worker stops: the next run on this home brings its own or none.
    forget_on_close: tuple[Path, ...] = ()
    # The model provider's base URL (None: Codex's own), named when Codex cannot reach it.
    model_url: str | None = None
