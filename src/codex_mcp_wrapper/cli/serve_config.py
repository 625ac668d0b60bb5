"""`serve --config FILE`: the TOML file of serve's options, found and checked (types and ranges)
before anything starts, so a bad key or value is one sentence and exit 2; and the settings
built from those options and the command line's."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codex_mcp_wrapper.cli.options import (
    codex_setup_settings,
    current_instance,
    settings_from,
    temporal_settings,
    worker_settings,
)
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.inputs import check_depth, read_text_file
from codex_mcp_wrapper.missions.model import McpServer
from codex_mcp_wrapper.scripted.script import load_script
from codex_mcp_wrapper.settings import MAX_WORKERS, Settings, Timeouts


def config_path(ctx: click.Context, given: Path | None) -> Path | None:
    if given is not None:
        return given
    if os.environ.get("CODEX_WRAPPER_CONFIG"):
        return Path(os.environ["CODEX_WRAPPER_CONFIG"])
    inst = current_instance(ctx)
    return inst.config_file if inst is not None and inst.config_file.is_file() else None


MAX_CONFIG_BYTES = 1_000_000  # a config of options is a few kilobytes


def read_serve_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}

    # A regular file of bounded size (a FIFO would block, /dev/zero never ends), nesting bounded.
    text = read_text_file(path, "config", MAX_CONFIG_BYTES, InputError)
    try:
        data = tomllib.loads(text)
    except RecursionError as exc:
        raise InputError(f"{path}: the config is nested too deeply.") from exc
    except ValueError as exc:  # TOMLDecodeError, or a number of thousands of digits
        detail = " ".join(str(exc).split(";")[0].split())
        raise InputError(f"{path}: not a valid TOML config ({detail}).") from exc
    check_depth(data, str(path), InputError)
    table = data.get("serve", data)
    try:
        config = ServeConfig.model_validate(table)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the table"
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(ServeConfig.model_fields))
            raise InputError(f"{path}: unknown option '{where}'; known: {known}.") from exc
        raise InputError(f"{path}: option '{where}': {error['msg']}.") from exc
    return config.model_dump(exclude_unset=True)


class ServeConfig(BaseModel):
    """The keys a `serve --config FILE` may set (the option names), with their types."""

    model_config = ConfigDict(extra="forbid", strict=True)

    transport: Literal["stdio", "http"] | None = None
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    token: str | None = None
    token_file: str | None = None
    allow_host: list[str] | None = None
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | None = None
    threads_per_worker: Annotated[int, Field(ge=1, le=256)] | None = None
    recycle_after_threads: Annotated[int, Field(ge=0)] | None = None
    recycle_above_mb: Annotated[int, Field(ge=0)] | None = None
    scripted: bool | None = None
    workspace: str | None = None
    auto_approve: bool | None = None
    codex_events: bool | None = None
    script: str | None = None
    progress_interval: Annotated[float, Field(ge=0.1, le=60, strict=False)] | None = None
    codex_home: str | None = None
    sync_codex_config: bool | None = None
    mirror_auth: bool | None = None
    pass_env: list[str] | None = None
    allow_mission_commands: bool | None = None
    ui: bool | None = None
    ui_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    tokens_file: str | None = None
    login_shell: bool | None = None
    allow_workspace: list[str] | None = None
    allow_danger_full_access: bool | None = None
    allow_client_providers: bool | None = None
    allow_client_config: bool | None = None
    expose_var: list[str] | None = None
    # The owner's MCP servers, which clients' missions use by name (mcp_servers: [NAME]).
    mcp_servers: dict[str, McpServer] | None = None
    record: str | None = None
    temporal: str | None = None
    namespace: str | None = None
    task_queue: str | None = None
    shared_dir: str | None = None
    affinity_wait: Annotated[float, Field(ge=0.1, le=3600, strict=False)] | None = None
    reconnect_within: Annotated[float, Field(ge=1, le=86400, strict=False)] | None = None


def serve_settings(ctx: click.Context, opt: Callable[[str], Any]) -> Settings:
    """The settings of a `serve` from its options (``opt(name)``: the command line's value
    over the config file's), each checked: a bad one is one sentence before any client
    connects."""
    script = _script(opt("script"), bool(opt("scripted")))
    return settings_from(
        ctx,
        workers=opt("workers"),
        scripted=bool(opt("scripted")),
        login_shell=bool(opt("login_shell")),
        approvals="accept" if opt("auto_approve") else "decline",
        codex_events=bool(opt("codex_events")),
        mission_commands=bool(opt("allow_mission_commands")),
        record=opt("record") is not None or None,
        record_dir=path_or_none(opt("record")),
        script=script,
        timeouts=_timeouts(opt("progress_interval")),
        **codex_setup_settings(
            path_or_none(opt("codex_home")),
            bool(opt("sync_codex_config")),
            bool(opt("mirror_auth")),
            list(opt("pass_env")),
        ),
        **worker_settings(
            opt("threads_per_worker"), opt("recycle_after_threads"), opt("recycle_above_mb")
        ),
        temporal=temporal_settings(
            opt("temporal"),
            opt("namespace"),
            opt("task_queue"),
            path_or_none(opt("shared_dir")),
            float(opt("affinity_wait")),
            float(opt("reconnect_within")),
        ),
    )


def path_or_none(value: Any) -> Path | None:
    return None if value is None else Path(value)


def _timeouts(progress: Any) -> Timeouts | None:
    """Timeouts with the progress interval given (checked: the config file's too)."""
    if progress is None:
        return None
    if (
        isinstance(progress, bool)
        or not isinstance(progress, int | float)
        or not (0.1 <= progress <= 60)
    ):
        raise InputError(
            f"progress_interval must be a number of seconds from 0.1 to 60, not {progress!r}."
        )
    return dataclasses.replace(Timeouts(), progress=float(progress))


def _script(path: Any, scripted: bool) -> Path | None:
    """The --script file, checked now: a bad one is an error before any client connects."""
    if path is None:
        return None
    if not scripted:
        raise InputError("--script plays on the scripted model: add --scripted.")
    resolved = Path(path).expanduser().resolve()
    load_script(resolved)  # a ScriptError is an InputError: one sentence, exit 2
    return resolved


def host_list(value: Any) -> list[str]:
    """``allow_host`` from the command line or the config file (a string or a list of them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InputError("allow_host in the config file must be a list of host names.")
