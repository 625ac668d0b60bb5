"""Named instances: a dev build and a released build side by side.

An instance owns a folder (``$CODEX_MCP_WRAPPER_INSTANCES/<name>``, default under the per-user
data dir) holding its state dir, logs, pid file, config file and, for installed releases, its
own virtualenvs and launcher. Two instances never share a file, a port, a worker home or a lock.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from codex_mcp_wrapper.errors import InputError

INSTANCES_ENV = "CODEX_MCP_WRAPPER_INSTANCES"
INSTANCE_ENV = "CODEX_MCP_WRAPPER_INSTANCE"
KNOWN = {"dev": (4105, "codex-wrapper-dev"), "release": (4106, "codex-wrapper")}
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def instances_root() -> Path:
    explicit = os.environ.get(INSTANCES_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_data_dir("codex-mcp-wrapper")) / "instances"


@dataclass(frozen=True)
class Instance:
    name: str
    home: Path
    port: int
    label: str

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def config_file(self) -> Path:
        return self.home / "wrapper.toml"

    @property
    def pid_file(self) -> Path:
        return self.home / "serve.pid"

    @property
    def launcher(self) -> Path:
        """The installed release's entry point (absent for instances run from a checkout)."""
        return self.home / "bin" / "codex-mcp-wrapper"

    @property
    def releases(self) -> Path:
        return self.home / "releases"

    def log_file(self, port: int) -> Path:
        return self.state_dir / "logs" / f"serve-{port}.log"


def instance(name: str) -> Instance:
    if not NAME.match(name):
        raise InputError(
            f"'{name}' is not an instance name: use lowercase letters, digits and dashes."
        )
    port, label = KNOWN.get(name, (4110 + zlib.crc32(name.encode()) % 800, f"codex-wrapper-{name}"))
    return Instance(name, instances_root() / name, port, label)


def all_instances() -> list[Instance]:
    names = set(KNOWN)
    root = instances_root()
    if root.is_dir():
        names |= {p.name for p in root.iterdir() if p.is_dir() and NAME.match(p.name)}
    return [instance(n) for n in sorted(names)]
