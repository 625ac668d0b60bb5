"""Keep secrets out of everything the wrapper writes, prints or returns: one path for all."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from collections.abc import Iterable
from typing import Any

from codex_mcp_wrapper.engine.events import (
    CodexEvent,
    Event,
    RunFinished,
    RunStarted,
    Subscriber,
    TaskFinished,
    TaskUpdate,
)
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult
from codex_mcp_wrapper.strings import map_strings

MIN_SECRET_LEN = 6
MASK = "[REDACTED]"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)


def variants(secret: str) -> set[str]:
    """``secret`` and the cheap transforms a command might print it in: reversed, and its
    base64 (standard and URL-safe) at each of the three alignments it can have inside a
    longer encoded text (the whole groups of three bytes it fills), so ``echo $KEY | base64``
    is caught too."""
    raw = secret.encode()
    found = {secret, secret[::-1]}
    for skip in range(3):
        body = raw[skip:]
        body = body[: len(body) // 3 * 3]
        if len(body) >= MIN_SECRET_LEN:
            found.add(base64.b64encode(body).decode())
            found.add(base64.urlsafe_b64encode(body).decode())
    return found


class Redactor:
    """Replaces known secret values with ``[REDACTED]`` in strings and nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        new = {v for s in secrets if s and len(s) >= MIN_SECRET_LEN for v in variants(s)}
        if new - self._secrets:
            self._secrets |= new
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def add_env(self, env: dict[str, str], all_values: bool = False) -> None:
        """Secrets from an env mapping: every value if ``all_values``, else secret-looking names."""
        self.add(v for k, v in env.items() if all_values or _SECRET_NAME.search(k))

    @classmethod
    def from_environment(cls) -> Redactor:
        redactor = cls()
        redactor.add_env(dict(os.environ))
        return redactor

    def text(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(MASK, value)

    def data(self, value: Any) -> Any:
        """``value`` (nested dicts and lists) with every string redacted."""
        return map_strings(value, self.text)


def redact_event(event: Event, redactor: Redactor) -> Event:
    """The event as an outside observer may see it: messages, results and Codex payloads with
    every known secret replaced (the event itself is frozen and stays as it was)."""
    if isinstance(event, TaskUpdate):
        return dataclasses.replace(event, message=redactor.text(event.message))
    if isinstance(event, CodexEvent):
        return dataclasses.replace(event, params=redactor.data(event.params))
    if isinstance(event, RunStarted):
        return dataclasses.replace(event, mission=redactor.data(event.mission))
    if isinstance(event, TaskFinished):
        result = TaskResult.model_validate(redactor.data(event.result.model_dump(mode="json")))
        return dataclasses.replace(event, result=result)
    if isinstance(event, RunFinished):
        summary = RunSummary.model_validate(redactor.data(event.summary.model_dump(mode="json")))
        return dataclasses.replace(event, summary=summary)
    return event


def redacting(observer: Subscriber, redactor: Redactor) -> Subscriber:
    """``observer``, fed redacted events."""

    def forward(event: Event) -> None:
        observer(redact_event(event, redactor))

    return forward
