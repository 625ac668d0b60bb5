"""Log lines that carry their context: ``bind(log, run=..., task=..., worker=...)`` once, and
every line through the result says which run, task and worker it is about."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any


class BoundLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each message with its context (``run=... task=... worker=...``) and passes
    the context on as ``extra`` fields, for handlers that format or filter on them."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        context = {k: v for k, v in (self.extra or {}).items() if v is not None}
        kwargs["extra"] = {**context, **kwargs.get("extra", {})}
        prefix = " ".join(f"{k}={v}" for k, v in context.items())
        return (f"[{prefix}] {msg}" if prefix else msg), kwargs

    def bind(self, **context: Any) -> BoundLogger:
        return BoundLogger(self.logger, {**(self.extra or {}), **context})


def bind(logger: logging.Logger | BoundLogger, **context: Any) -> BoundLogger:
    if isinstance(logger, BoundLogger):
        return logger.bind(**context)
    return BoundLogger(logger, context)
