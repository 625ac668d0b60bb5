"""``ClientPolicy``: what an MCP client of ``serve`` may ask for, as the server's owner set it.

The CLI and the Python API run their user's own missions with full power. A client of the MCP
server is someone else (an agent behind a hub, acting on text it read), so everything it sends
is checked here first, least privilege by default (docs/security.md):

- workspaces (a mission's ``workspace_root``, a ``codex`` call's ``cwd``, a mission file, a
  script file) only under the allowed roots, symlinks resolved; a call's ``cwd`` must exist
  (a mission's workspace may be created below a root, as ``run`` does);
- sandboxes ``read-only`` and ``workspace-write`` only (``danger-full-access`` and approvals
  of commands that ask to leave the sandbox only with the owner's allowance);
- no model provider of the client's choosing (and never one holding a credential of the
  server's the owner did not share with clients by ``--expose-var``);
- no commands on the server's machine: hooks, tools, ``expect.verify`` and stdio MCP servers
  given by the client; the owner's own MCP servers are used by name;
- Codex config overrides from a short list that cannot change where Codex sends requests,
  what it runs or what its commands see;
- ``${VAR}`` only from the client's ``vars`` and the variables the owner exposes by name.

Every refusal is one sentence naming the rule and the owner's option that would allow it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.errors import PolicyRefusal
from codex_mcp_wrapper.missions.model import (
    CustomProvider,
    McpServer,
    Mission,
    TaskSettings,
)

SAFE_SANDBOXES = frozenset({"read-only", "workspace-write"})
MISSION_SUFFIXES = (".yaml", ".yml", ".json")
# Codex config keys a client may override: how the model thinks and talks, nothing about
# where requests go (providers), what runs (MCP servers, notify, sandbox, shell environment)
# or which projects are trusted.
CLIENT_CONFIG_KEYS = frozenset(
    {
        "model",
        "model_reasoning_effort",
        "model_reasoning_summary",
        "model_verbosity",
        "model_supports_reasoning_summaries",
        "model_context_window",
        "model_auto_compact_token_limit",
        "hide_agent_reasoning",
        "show_raw_agent_reasoning",
        "compact_prompt",
        "developer_instructions",
        "base_instructions",
        "instructions",
        "personality",
    }
)


def refusal(what: str, allow: str) -> PolicyRefusal:
    return PolicyRefusal(f"refused by this server's policy: {what}; {allow}.")


@dataclass(frozen=True)
class ClientPolicy:
    """The owner's choices (``serve`` flags and its ``--config`` file)."""

    roots: tuple[Path, ...]  # directories (resolved) clients may use, with everything below
    sandboxes: frozenset[str] = SAFE_SANDBOXES
    client_providers: bool = False  # a mission may name its own provider (never a credential)
    exposed_vars: tuple[str, ...] = ()  # the owner's variables ${VAR} may expand
    commands: bool = False  # hooks, tools, expect.verify and stdio MCP servers of clients
    client_config: bool = False  # any Codex config override, not only CLIENT_CONFIG_KEYS
    mcp_servers: Mapping[str, McpServer] = field(default_factory=dict)  # the owner's, by name

    @property
    def escalation(self) -> bool:
        """Whether a client may approve a command that asks to run outside the sandbox."""
        return "danger-full-access" in self.sandboxes

    def environ(self) -> dict[str, str]:
        """The variables of this process a client's ``${VAR}`` may expand."""
        return {name: os.environ[name] for name in self.exposed_vars if name in os.environ}

    def unset_hint(self) -> str:
        shown = ", ".join(self.exposed_vars) or "none"
        return f"pass it in `vars` (this server exposes these of its own variables: {shown})"

    # -- places ------------------------------------------------------------------------------
    def _roots_text(self) -> str:
        return ", ".join(str(r) for r in self.roots)

    def directory(self, path: Path, what: str, missing_ok: bool = False) -> Path:
        """``path`` (absolute) resolved: a directory under an allowed root, existing unless
        ``missing_ok`` (a mission's workspace, created by the run as under ``run``; never a
        root itself, which must exist)."""
        resolved = path.resolve()
        self._inside(resolved, what)
        if resolved.is_dir() or (missing_ok and not resolved.exists()):
            return resolved
        raise PolicyRefusal(
            f"{what} {path} does not exist or is not a directory; this server never creates "
            f"one for a client: create it, or use an existing directory under "
            f"{self._roots_text()}."
        )

    def _inside(self, resolved: Path, what: str) -> None:
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            raise refusal(
                f"{what} {resolved} is outside the directories clients may use "
                f"({self._roots_text()})",
                "the server's owner can add one with --allow-workspace DIR",
            )

    def mission_file(self, given: str) -> Path:
        """A mission path a client gave (relative ones from the first root): a ``.yaml``,
        ``.yml`` or ``.json`` file under an allowed root. Its content is read only then."""
        path = Path(given)
        if not path.is_absolute():
            path = self.roots[0] / path
        resolved = path.resolve()
        self._inside(resolved, "mission file")
        if resolved.suffix.lower() not in MISSION_SUFFIXES:
            raise refusal(
                f"mission file {resolved} is not a .yaml, .yml or .json file",
                "give the path of a mission file, or the mission itself as an object",
            )
        return resolved

    # -- missions ----------------------------------------------------------------------------
    def check(self, mission: Mission, base: Path) -> Mission:
        """``mission`` as a client may run it, or ``PolicyRefusal``. Relative paths are taken
        from ``base`` (the mission file's folder, else the first root); the owner's MCP
        servers named by the mission are filled in (the result has definitions only)."""
        mission = mission.model_copy(deep=True)
        root = Path(mission.workspace_root)
        mission.workspace_root = str(
            self.directory(
                root if root.is_absolute() else base / root, "workspace_root", missing_ok=True
            )
        )
        self._provider(mission)
        if mission.hooks:
            self._commands(f"this mission has hooks ({mission.hooks[0].on}, ...)")
        for settings in [mission.defaults, *mission.tasks]:
            where = "defaults" if settings is mission.defaults else f"task '{settings.id}'"  # type: ignore[attr-defined]
            self._settings(settings, where)
        for task in mission.tasks:
            sandbox = task.sandbox or mission.defaults.sandbox or "read-only"
            self.sandbox(sandbox, f"task '{task.id}'")
            if task.expect is not None and task.expect.verify:
                self._commands(f"task '{task.id}' has expect.verify")
            if isinstance(task.script, str):
                script = Path(task.script)
                script = (script if script.is_absolute() else base / script).resolve()
                self._inside(script, "script file")
                task.script = str(script)
        return mission

    def sandbox(self, sandbox: str, where: str) -> None:
        if sandbox not in self.sandboxes:
            raise refusal(
                f"{where} asks for sandbox '{sandbox}', which runs Codex's commands outside "
                "any sandbox",
                "the server's owner can allow it with --allow-danger-full-access",
            )

    def config(self, config: Mapping[str, Any] | None, where: str) -> None:
        if self.client_config:
            return
        for key in config or {}:
            if key not in CLIENT_CONFIG_KEYS:
                raise refusal(
                    f"{where} sets the Codex config key '{key}', which clients may not set "
                    f"(they may set {', '.join(sorted(CLIENT_CONFIG_KEYS))})",
                    "the server's owner can allow any key with --allow-client-config",
                )

    def _commands(self, what: str) -> None:
        if not self.commands:
            raise refusal(
                f"{what}, which runs commands on the server's machine outside Codex's sandbox",
                "the server's owner can allow it with --allow-mission-commands",
            )

    def _provider(self, mission: Mission) -> None:
        provider = mission.provider
        if not isinstance(provider, CustomProvider):
            return
        if not self.client_providers:
            raise refusal(
                f"the mission's provider sends Codex's requests to {provider.base_url}, and "
                "clients may not choose the model provider",
                "the server's owner can allow it with --allow-client-providers",
            )
        if provider.env_key and provider.env_key not in self.exposed_vars:
            raise refusal(
                f"provider.env_key {provider.env_key} would send a variable of the server's "
                f"to {provider.base_url}, and a client's provider never gets a credential of "
                "the server's",
                f"drop env_key, or the server's owner can share the variable with clients by "
                f"--expose-var {provider.env_key}",
            )

    def _settings(self, settings: TaskSettings, where: str) -> None:
        self.config(settings.config, where)
        if settings.tools:
            self._commands(f"{where} has tools ({settings.tools[0].name}, ...)")
        servers = settings.mcp_servers
        if isinstance(servers, list):
            settings.mcp_servers = {name: self._named(name, where) for name in servers}
            return
        for name, server in (servers or {}).items():
            if server.command is not None:
                self._commands(
                    f"{where} defines the stdio MCP server '{name}' (use the owner's servers "
                    f"by name instead, mcp_servers: [NAME]; defined: "
                    f"{', '.join(self.mcp_servers) or 'none'})"
                )
            if server.bearer_token_env_var:
                raise refusal(
                    f"{where}: MCP server '{name}' would send the server's variable "
                    f"{server.bearer_token_env_var} to {server.url}",
                    "a client's MCP server gets no credential of the server's; the owner "
                    "can define it in the server's config and the mission name it",
                )

    def _named(self, name: str, where: str) -> McpServer:
        server = self.mcp_servers.get(name)
        if server is None:
            known = ", ".join(sorted(self.mcp_servers)) or "none"
            raise PolicyRefusal(
                f"{where} names the MCP server '{name}', which this server does not define "
                f"(it defines: {known}); its owner defines servers in the [mcp_servers] table "
                "of serve's --config file."
            )
        return server.model_copy(deep=True)
