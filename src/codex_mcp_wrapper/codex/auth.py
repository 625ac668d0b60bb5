"""Credentials for Codex's own model provider, checked before any worker starts.

Measured on Codex 0.163.0: ``codex app-server`` logs in to OpenAI only from ``auth.json`` in its
CODEX_HOME; it reads neither ``OPENAI_API_KEY`` nor ``CODEX_API_KEY`` from its environment
(only ``codex exec`` reads ``CODEX_API_KEY``); a request without a login is refused (401) and
Codex retries that as "Reconnecting...". So the wrapper writes the API key of those
variables into each worker's home (``home.write_api_key_auth``), or copies the user's
``auth.json`` there with ``--mirror-auth``. Credentials are per run: an ``auth.json`` an earlier
run left in a worker's home is neither counted here nor used (``WorkerFactory`` removes it).
``doctor`` and the run pre-flight ask the same question here and say the same sentence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from codex_mcp_wrapper.errors import NoCredentials
from codex_mcp_wrapper.settings import API_KEY_VARS, Settings


@dataclass(frozen=True)
class Credentials:
    """Where a worker on Codex's own provider gets its login; ``source`` None: nowhere."""

    source: str | None
    missing: str = ""  # the sentence that says what is missing and what to do

    @property
    def ok(self) -> bool:
        return self.source is not None


def api_key_from_env() -> tuple[str, str] | None:
    """The first of ``OPENAI_API_KEY``, ``CODEX_API_KEY`` that is set: (name, value)."""
    for name in API_KEY_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


def find_credentials(settings: Settings) -> Credentials:
    """Whether workers on Codex's own model provider will have a login, and from where."""
    key = api_key_from_env()
    if key is not None:
        return Credentials(f"API key in ${key[0]}")
    user_auth = settings.user_codex_home() / "auth.json"
    if settings.mirror_auth and user_auth.is_file():
        return Credentials(f"{user_auth} (copied into each worker by --mirror-auth)")
    why = (
        f" ({user_auth} is copied into workers only with --mirror-auth)"
        if user_auth.is_file()
        else ""
    )
    return Credentials(
        None,
        f"no OPENAI_API_KEY (or CODEX_API_KEY) and no auth.json for Codex's own model "
        f"provider{why}: set OPENAI_API_KEY, or use --scripted (the scripted model) or a "
        "mission provider",
    )


def require_credentials(settings: Settings) -> None:
    """The run pre-flight for Codex's own provider: raise ``NoCredentials`` at once rather
    than start workers whose every model request would be refused and retried."""
    found = find_credentials(settings)
    if not found.ok:
        raise NoCredentials(found.missing + ".")
