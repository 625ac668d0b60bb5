"""The scripted model: a local Responses API server that plays a script, for offline runs."""

from codex_mcp_wrapper.scripted.script import Script, load_script, parse_script
from codex_mcp_wrapper.scripted.server import ScriptedModel

__all__ = ["Script", "ScriptedModel", "load_script", "parse_script"]
