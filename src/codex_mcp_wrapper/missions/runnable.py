"""What a valid mission still needs of this machine to run: checks ``validate`` and ``run``
share, so what ``validate`` accepts, ``run`` can run.

A mission file can be valid against the schema and still unrunnable here: a ``workspace_root``
that is a file, a stdio MCP server whose program is not installed, a provider ``env_key`` that
is no API key variable. And a workspace that is the filesystem root, a home directory or a
system directory is refused unless asked for (``allow_broad``): Codex may write anywhere in its
workspace, and every path in it is shown to the model.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from codex_mcp_wrapper.errors import MissionError
from codex_mcp_wrapper.missions.model import CustomProvider, McpServer, Mission, defined_servers
from codex_mcp_wrapper.settings import API_KEY_VARS

BROAD_FLAG = "--allow-broad-workspace"
# Directories that hold the system itself (exactly these: a project below one, such as a CI
# checkout under /var/lib, is fine).
SYSTEM_DIRS = frozenset(
    Path(p)
    for p in (
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib32",
        "/lib64",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/local",
        "/var",
        "/var/lib",
        "/var/tmp",
    )
)


def broad_workspace(path: Path) -> str | None:
    """What makes ``path`` too broad to be a workspace (the filesystem root, the user's home,
    a system directory), or None."""
    resolved = path.resolve()
    if resolved == Path(resolved.anchor):
        return "the filesystem root"
    if resolved == Path.home().resolve():
        return "your home directory"
    if resolved in SYSTEM_DIRS:
        return "a system directory"
    return None


def check_workspace(mission: Mission, source: str, allow_broad: bool) -> None:
    """``workspace_root`` is a directory, or does not exist yet (the run creates it); a broad one
    only with ``allow_broad``."""
    root = Path(mission.workspace_root)
    if root.exists() and not root.is_dir():
        raise MissionError(
            f"{source}: workspace_root {root} exists and is not a directory; point "
            "workspace_root at a directory (or a path to create)."
        )
    broad = broad_workspace(root)
    if broad is not None and not allow_broad:
        raise MissionError(
            f"{source}: workspace_root {root} is {broad}, where Codex could change anything; "
            f"point workspace_root at a project folder, or pass {BROAD_FLAG} if you mean it."
        )


def missing_program(server: McpServer) -> str | None:
    """The program of a stdio MCP server when it cannot be found as Codex would look for it
    (on the server's ``PATH``, else this process's), else None. A relative path with a slash
    and no ``cwd`` is not judged here: only Codex knows where it starts the server."""
    program = server.command
    if program is None:  # a URL server
        return None
    if "/" not in program:
        found = shutil.which(program, path=server.env.get("PATH", os.environ.get("PATH")))
        return None if found else program
    path = Path(program)
    if not path.is_absolute():
        if server.cwd is None or not Path(server.cwd).is_absolute():
            return None
        path = Path(server.cwd) / path
    return None if path.is_file() and os.access(path, os.X_OK) else program


def check_mcp_programs(mission: Mission, source: str) -> None:
    """Each stdio MCP server's program exists; a missing one is named before anything starts
    (else the task fails with "MCP server(s) did not start")."""
    for where, settings in [("defaults", mission.defaults)] + [
        (f"task '{task.id}'", task) for task in mission.tasks
    ]:
        for name, server in defined_servers(settings).items():
            program = missing_program(server)
            if program is not None:
                raise MissionError(
                    f"{source}: {where}: MCP server '{name}': the program `{program}` is not "
                    "found on PATH (or not executable); install it, or give its full path as "
                    f"mcp_servers.{name}.command."
                )


def check_env_key(mission: Mission, pass_env: Sequence[str]) -> None:
    """A custom provider's ``env_key`` is an API key variable (a name ending in _API_KEY, or one
    passed with --pass-env): a mission must not make workers send any variable of this process,
    AWS_SECRET_ACCESS_KEY say, to a URL it chooses."""
    provider = mission.provider
    if not isinstance(provider, CustomProvider) or not provider.env_key:
        return
    if provider.env_key in (*API_KEY_VARS, *pass_env) or provider.env_key.endswith("_API_KEY"):
        return
    raise MissionError(
        f"provider.env_key {provider.env_key} is not an API key variable (a name ending in "
        f"_API_KEY); to send it to {provider.base_url} anyway, pass --pass-env "
        f"{provider.env_key}."
    )


def check_runnable(
    mission: Mission,
    source: str,
    *,
    allow_broad: bool,
    pass_env: Sequence[str] = (),
) -> None:
    """Everything ``run`` would refuse about a valid mission, as a ``MissionError`` (exit 2)."""
    check_workspace(mission, source, allow_broad)
    check_mcp_programs(mission, source)
    check_env_key(mission, pass_env)
