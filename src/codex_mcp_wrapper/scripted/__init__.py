"""The scripted model: a local Responses API server that plays a script, for offline runs.

``ScriptedModel`` (the server, which loads uvicorn) is imported only when asked for, so code
that only reads scripts (``validate``) stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_mcp_wrapper.scripted.script import Script, load_script, parse_script

if TYPE_CHECKING:
    from codex_mcp_wrapper.scripted.server import ScriptedModel

__all__ = ["Script", "ScriptedModel", "load_script", "parse_script"]


def __getattr__(name: str) -> Any:
    if name == "ScriptedModel":
        from codex_mcp_wrapper.scripted.server import ScriptedModel

        return ScriptedModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
