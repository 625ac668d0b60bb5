"""Ready-to-paste configuration that points MCP clients and hubs at an instance."""

from __future__ import annotations

import json
import os
from typing import Any

import tomli_w

from codex_mcp_wrapper.instances.registry import Instance
from codex_mcp_wrapper.settings import wrapper_program


def command_for(inst: Instance) -> str:
    """The wrapper binary hubs should launch: $CODEX_WRAPPER_BIN, the instance's release
    launcher, or this installation's codex-mcp-wrapper, by its absolute path (a client's PATH
    is not the shell's)."""
    explicit = os.environ.get("CODEX_WRAPPER_BIN")
    if explicit:
        return explicit
    if inst.launcher.exists():
        return str(inst.launcher)
    return wrapper_program(bare_when_on_path=False)


def _args(inst: Instance) -> list[str]:
    args = ["--instance", inst.name, "serve"]
    config = os.environ.get("CODEX_WRAPPER_CONFIG")
    if config:
        args += ["--config", config]
    return args


def exports(inst: Instance) -> dict[str, Any]:
    command = command_for(inst)
    args = _args(inst)
    url = f"http://127.0.0.1:{inst.port}/mcp"
    env = {"CODEX_MCP_WRAPPER_INSTANCE": inst.name}
    return {
        "codex_config_toml": tomli_w.dumps(
            {"mcp_servers": {inst.label: {"command": command, "args": args, "env": env}}}
        ),
        "mcp_servers_json": {
            "stdio": {"mcpServers": {inst.label: {"command": command, "args": args, "env": env}}},
            "http": {"mcpServers": {inst.label: {"type": "http", "url": url}}},
        },
        "pm2_ecosystem_app": {
            "name": inst.label,
            "script": command,
            "args": [*args, "--transport", "http", "--port", str(inst.port)],
            "interpreter": "none",
            "autorestart": True,
            "kill_timeout": 20000,
            "env": env,
        },
        "hub_descriptor": {
            "name": inst.label,
            "description": f"codex-mcp-wrapper ({inst.name} instance): Codex sessions and "
            "missions over MCP",
            "transport": "stdio",
            "command": command,
            "args": args,
            "env": env,
            "http": {"url": url},
        },
    }


def render(inst: Instance, fmt: str) -> str:
    data = exports(inst)
    if fmt == "codex":
        return str(data["codex_config_toml"])
    if fmt == "json":
        return json.dumps(data["mcp_servers_json"], indent=2)
    if fmt == "pm2":
        app = json.dumps(data["pm2_ecosystem_app"], indent=2)
        return f"module.exports = {{\n  apps: [{app}]\n}};\n"
    if fmt == "hub":
        return json.dumps(data["hub_descriptor"], indent=2)
    return json.dumps(data, indent=2)
