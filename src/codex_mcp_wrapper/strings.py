"""``map_strings``: the one walk over nested data (JSON-like dicts and lists) that applies a
function to every string in it; redaction uses it everywhere (``engine.redaction.Redactor``,
the approval questions, the recording proxy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to each string in it (dict keys kept as they are)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    return value
