"""What every MCP tool shares: the tool boundary (``guarded``: an error becomes an error
result, never a crash), argument aliases (``approval-policy``), the tools' annotations.

The tools themselves: ``codex_tools`` (``codex``, ``codex-reply``: the drop-in for the removed
``codex mcp-server``) and ``mission_tools`` (``batch``, ``mission_*``, ``reply``,
``runs_list``); each is argument mapping and result shaping around one call into ``Runs``.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.types import CallToolResult, ToolAnnotations
from pydantic.fields import FieldInfo

from codex_mcp_wrapper.errors import WrapperError
from codex_mcp_wrapper.mcp.shaping import error_result

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
RUNS_CODEX = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)


def accepts_aliases(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The SDK passes arguments by their alias (``approval-policy``): map them back to names."""
    hints = typing.get_type_hints(fn, include_extras=True)
    aliases = {
        meta.alias: name
        for name, hint in hints.items()
        for meta in getattr(hint, "__metadata__", ())
        if isinstance(meta, FieldInfo) and meta.alias
    }

    @functools.wraps(fn)
    async def wrapper(**kwargs: Any) -> Any:
        return await fn(**{aliases.get(k, k): v for k, v in kwargs.items()})

    return wrapper


async def guarded(work: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
    """The MCP tool boundary: a user's error or a bug becomes an error result, never a crash."""
    try:
        return await work()
    except WrapperError as exc:
        return error_result(str(exc))
    except Exception as exc:  # noqa: BLE001 - the MCP tool boundary: an error result
        return error_result(f"unexpected {type(exc).__name__}: {exc}")
