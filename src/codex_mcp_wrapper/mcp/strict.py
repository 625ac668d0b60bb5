"""A strict tool contract: every tool's input schema says ``additionalProperties: false``, and a
call with an argument the tool does not take, or a value its schema refuses, is answered with
one sentence naming the argument (and the accepted ones) instead of running with defaults or
returning a validation dump, as the removed ``codex mcp-server`` refused unknown fields.

``StrictServer`` advertises the closed schemas; ``StrictArguments`` is the server middleware
that checks each ``tools/call`` against them before the SDK's own validation runs.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

import jsonschema
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import Tool as MCPTool
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from codex_mcp_wrapper.mcp.shaping import error_result


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` refusing properties it does not name."""
    return {**schema, "additionalProperties": False}


def argument_error(tool: str, schema: Mapping[str, Any], arguments: Any) -> str | None:
    """What is wrong with ``arguments`` for ``tool``, in one sentence, or None."""
    if not isinstance(arguments, dict):
        return f"the arguments of {tool} must be an object."
    accepted = list((schema.get("properties") or {}).keys())
    unknown = [key for key in arguments if key not in accepted]
    if unknown:
        key = unknown[0]
        near = difflib.get_close_matches(key.replace("_", "-"), accepted, n=1) or (
            difflib.get_close_matches(key, accepted, n=1)
        )
        hint = f" (did you mean `{near[0]}`?)" if near else ""
        return (
            f"{tool} does not take the argument `{key}`{hint}; it takes "
            + ", ".join(f"`{name}`" for name in accepted)
            + "."
        )
    error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(arguments))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path)
    if not where:  # a required argument missing, or the object itself
        return f"{tool}: {error.message}."
    return f"{tool}: argument `{where}`: {error.message}."


_VALIDATORS: dict[int, jsonschema.Draft202012Validator] = {}


def _validator(schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    """One validator per schema object (the server's schemas live as long as it does)."""
    validator = _VALIDATORS.get(id(schema))
    if validator is None or validator.schema is not schema:
        validator = _VALIDATORS[id(schema)] = jsonschema.Draft202012Validator(schema)
    return validator


# Tools whose schema stays open and whose unknown arguments are dropped (logged), as the
# removed codex mcp-server's were: its `codex-reply` took and ignored anything (clients such as
# async-codex-mcp send the session's `cwd` with every reply). Its `codex` refused them.
OPEN_TOOLS = frozenset({"codex-reply"})
log = logging.getLogger("codex_mcp_wrapper.mcp")


class StrictServer(MCPServer):
    """An ``MCPServer`` whose tools advertise closed input schemas (but ``OPEN_TOOLS``)."""

    async def list_tools(self) -> list[MCPTool]:
        return [
            tool
            if tool.name in OPEN_TOOLS
            else tool.model_copy(update={"input_schema": closed(tool.input_schema)})
            for tool in await super().list_tools()
        ]


class StrictArguments:
    """Server middleware: refuses a ``tools/call`` whose arguments do not fit the tool's
    schema, with an error result (``isError``) of one sentence."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        self._schemas: dict[str, dict[str, Any]] | None = None

    async def _schema(self, name: str) -> dict[str, Any] | None:
        if self._schemas is None:
            tools = await self.server.list_tools()
            self._schemas = {tool.name: tool.input_schema for tool in tools}
        return self._schemas.get(name)

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        params = ctx.params
        if ctx.method == "tools/call" and isinstance(params, dict):
            name = str(params.get("name"))
            schema = await self._schema(name)
            if schema is not None and name in OPEN_TOOLS:
                _drop_unknown(name, schema, params)
            if schema is not None:
                error = argument_error(name, schema, params.get("arguments") or {})
                if error is not None:  # shaped as a tool's error result, which this
                    # middleware owns whole: no resultType on a handshake revision (the old
                    # server's had none); 2026-07-28 requires it, its clients refuse one without
                    shaped = error_result(error).model_dump(by_alias=True, exclude_none=True)
                    shaped.pop("resultType", None)
                    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                        shaped["resultType"] = "complete"
                    return shaped
        return await call_next(ctx)


def _drop_unknown(tool: str, schema: Mapping[str, Any], params: dict[str, Any]) -> None:
    """Remove (and log) the arguments ``tool``'s schema does not name."""
    arguments = params.get("arguments")
    if not isinstance(arguments, dict):
        return
    known = set(schema.get("properties") or {})
    ignored = sorted(key for key in arguments if key not in known)
    if ignored:
        log.info("%s ignores the arguments %s, as codex mcp-server did", tool, ", ".join(ignored))
        params["arguments"] = {k: v for k, v in arguments.items() if k in known}
