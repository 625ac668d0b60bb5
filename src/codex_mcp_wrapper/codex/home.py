"""Render an isolated, hermetic ``CODEX_HOME`` for a Codex process.

Hermetic means: no update check, no analytics, no plugins (which otherwise reach out to remote
hosts), and, when the scripted model is selected, a model provider on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

SCRIPTED_PROVIDER = "scripted"


@dataclass(frozen=True)
class ProviderSpec:
    """Which model provider Codex uses: its own (``codex``) or a Responses-compatible one."""

    kind: str = "codex"  # "codex" | "scripted" | "custom"
    name: str = SCRIPTED_PROVIDER
    base_url: str | None = None
    env_key: str | None = None
    model: str | None = None

    def toml(self) -> dict[str, Any]:
        if self.kind == "codex":
            return {}
        block: dict[str, Any] = {
            "name": self.name,
            "base_url": self.base_url,
            "wire_api": "responses",
            "request_max_retries": 0,
            "stream_max_retries": 0,
        }
        if self.env_key:
            block["env_key"] = self.env_key
        out: dict[str, Any] = {
            "model_provider": self.name,
            "model_providers": {self.name: block},
        }
        if self.model:
            out["model"] = self.model
        return out


def scripted_provider(base_url: str) -> ProviderSpec:
    return ProviderSpec(kind="scripted", base_url=base_url, model="scripted")


@dataclass
class CodexHomeSpec:
    provider: ProviderSpec = field(default_factory=ProviderSpec)
    trusted_projects: list[Path] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    user_config: Path | None = None  # merged underneath ours when --sync-codex-config


HERMETIC: dict[str, Any] = {
    "approval_policy": "never",
    "sandbox_mode": "read-only",
    "check_for_update_on_startup": False,
    "analytics": {"enabled": False},
    "feedback": {"enabled": False},
    "features": {"plugins": False},
    "history": {"persistence": "none"},
    # A thread the wrapper is done with (thread/unsubscribe) is unloaded after this delay and
    # its MCP servers stopped; Codex's default keeps them running for over 11 minutes.
    # Process-wide only (measured on 0.163.0: ignored in a thread's config).
    "thread_unload_delay_secs": 5,
}


def otel_config(endpoint: str | None) -> dict[str, Any]:
    """Codex's own OpenTelemetry sent to ``endpoint`` (the standard
    OTEL_EXPORTER_OTLP_ENDPOINT: OTLP/HTTP, its log events and traces), or nothing."""
    if not endpoint:
        return {}
    base = endpoint.rstrip("/")

    def exporter(signal: str) -> dict[str, Any]:
        return {"otlp-http": {"endpoint": f"{base}/v1/{signal}", "protocol": "binary"}}

    return {"otel": {"exporter": exporter("logs"), "trace_exporter": exporter("traces")}}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def render_config(spec: CodexHomeSpec) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if spec.user_config is not None and spec.user_config.is_file():
        with spec.user_config.open("rb") as fh:
            config = tomllib.load(fh)
    config = _deep_merge(config, HERMETIC)
    config = _deep_merge(config, spec.provider.toml())
    if spec.trusted_projects:
        config = _deep_merge(
            config,
            {"projects": {str(p): {"trust_level": "trusted"} for p in spec.trusted_projects}},
        )
    return _deep_merge(config, spec.extra)


def write_codex_home(home: Path, spec: CodexHomeSpec) -> Path:
    """Create ``home`` (mode 0700) with a rendered ``config.toml``; returns the config path."""
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    path = home / "config.toml"
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_bytes(tomli_w.dumps(render_config(spec)).encode())
    os.replace(tmp, path)
    return path


def mirror_auth(source_home: Path, home: Path) -> bool:
    """Copy ``auth.json`` into ``home`` with mode 0600, unless ``home`` holds a copy at least
    as new (a ChatGPT login refreshes its single-use token in place: copying the older file
    over it would log the worker out); False when there is none to copy."""
    source = source_home / "auth.json"
    if not source.is_file():
        return False
    target = home / "auth.json"
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return True
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    return True


def write_api_key_auth(home: Path, api_key: str) -> None:
    """Log ``home`` in with an API key (mode 0600), as ``codex login --with-api-key`` does:
    ``codex app-server`` reads its login only from ``auth.json``, never from the environment."""
    target = home / "auth.json"
    tmp = target.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"OPENAI_API_KEY": api_key, "tokens": None, "last_refresh": None}, fh)
    os.replace(tmp, target)


def config_snippet(base_url: str) -> str:
    """The config.toml lines a person pastes to point their Codex at a scripted model."""
    return tomli_w.dumps(
        {
            "model": "scripted",
            "model_provider": SCRIPTED_PROVIDER,
            "model_providers": {
                SCRIPTED_PROVIDER: {
                    "name": SCRIPTED_PROVIDER,
                    "base_url": base_url,
                    "wire_api": "responses",
                    "request_max_retries": 0,
                    "stream_max_retries": 0,
                }
            },
            "check_for_update_on_startup": False,
            "analytics": {"enabled": False},
            "features": {"plugins": False},
        }
    )
