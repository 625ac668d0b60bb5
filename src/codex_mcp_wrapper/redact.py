"""Keep secrets out of everything the wrapper writes or returns."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

MIN_SECRET_LEN = 6
MASK = "[REDACTED]"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)


class Redactor:
    """Replaces known secret values with ``[REDACTED]`` in strings and nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if s and len(s) >= MIN_SECRET_LEN}
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
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value
