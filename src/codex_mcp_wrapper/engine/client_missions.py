"""``ClientMissions``: the missions a call asks for, as ``Runs`` runs them. A ``codex`` call
becomes a one-task mission; for an MCP client (an ``Identity`` given) its directory, sandbox
and config are checked against the server's ``ClientPolicy``, and a mission it sends is read
within the policy (files under its roots, only the variables the owner exposes) and checked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.engine.access import Identity
from codex_mcp_wrapper.missions.loading import load_mission, parse_mission
from codex_mcp_wrapper.missions.model import Mission
from codex_mcp_wrapper.missions.policy import ClientPolicy
from codex_mcp_wrapper.missions.single import CodexRequest, codex_mission
from codex_mcp_wrapper.settings import Settings


class ClientMissions:
    """Part of ``Runs``: turning a call's request into the mission it runs."""

    settings: Settings
    policy: ClientPolicy
    default_cwd: Path

    def _codex_mission(self, request: CodexRequest, client: Identity | None = None) -> Mission:
        if self.settings.scripted and self.settings.script and request.script is None:
            request = replace(request, script=str(self.settings.script))
        if client is None:
            return codex_mission(request, self.default_cwd)
        policy = self.policy  # a client's call: within the server's policy
        cwd = Path(request.cwd).expanduser() if request.cwd else self.default_cwd
        cwd = policy.directory(cwd if cwd.is_absolute() else self.default_cwd / cwd, "cwd")
        policy.sandbox(request.sandbox or "read-only", "the call")
        policy.config(request.config, "the call")
        return codex_mission(replace(request, cwd=str(cwd)), self.default_cwd)

    # -- a client's missions ---------------------------------------------------------------
    def client_mission(
        self,
        mission: dict[str, Any] | str,
        variables: dict[str, str] | None = None,
    ) -> Mission:
        """A mission argument of an MCP call (an object as in a mission file, or the path of
        one) as a ``Mission`` the client may run: read within the server's policy (files
        under its roots only, ``${VAR}`` from ``variables`` and the owner's exposed
        variables only), then checked against it."""
        policy = self.policy
        if isinstance(mission, str):
            path = policy.mission_file(mission)
            parsed = load_mission(
                path,
                variables,
                environ=policy.environ(),
                unset_hint=policy.unset_hint(),
                server_names=True,
            )
            base = path.parent
        else:
            parsed = parse_mission(
                mission,
                "mission",
                variables,
                environ=policy.environ(),
                unset_hint=policy.unset_hint(),
            )
            base = policy.roots[0]
        return policy.check(parsed, base)
