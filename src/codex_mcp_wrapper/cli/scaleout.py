"""``host``: this machine as a host of a Temporal scale-out (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import sys
from pathlib import Path

import click

from codex_mcp_wrapper import process
from codex_mcp_wrapper.app import temporal_missing
from codex_mcp_wrapper.cli.metrics import metrics_options
from codex_mcp_wrapper.cli.options import (
    codex_setup_options,
    codex_setup_settings,
    settings_from,
    temporal_options,
    temporal_settings,
    worker_options,
    worker_settings,
)
from codex_mcp_wrapper.settings import default_workers


def default_host_id(state_dir: Path) -> str:
    """This machine's name and a digest of the state dir: stable across restarts (its own
    queue then finds the threads its homes hold), distinct for two hosts on one machine."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:6]
    return f"{socket.gethostname()}-{digest}"


@click.command(name="host")
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    help=f"Tasks this host runs at once [default: {default_workers()}].",
)
@click.option(
    "--host-id",
    help="This host's name: its own task queue (QUEUE@HOST-ID) and the prefix of its workers' "
    "labels; keep it across restarts [default: the machine's name and a digest of the state "
    "dir].",
)
@click.option(
    "--drain",
    type=click.FloatRange(0, 3600),
    default=10.0,
    show_default=True,
    help="On SIGTERM, seconds running tasks get to finish; then they are handed back and "
    "retried on another host.",
)
@click.option(
    "--auto-approve", is_flag=True, help="Accept Codex's approval requests (default: decline)."
)
@metrics_options
@codex_setup_options
@worker_options
@temporal_options(required=True)
@click.pass_context
def host(
    ctx: click.Context,
    workers: int | None,
    host_id: str | None,
    drain: float,
    auto_approve: bool,
    metrics_port: int | None,
    metrics_host: str,
    codex_home: Path | None,
    sync_codex_config: bool,
    mirror_auth: bool,
    pass_env: tuple[str, ...],
    threads_per_worker: int | None,
    recycle_after_threads: int | None,
    recycle_above_mb: int | None,
    temporal: str,
    namespace: str,
    task_queue: str,
    shared_dir: Path | None,
    affinity_wait: float,
    reconnect_within: float,
) -> None:
    """Take mission tasks from a Temporal server and run them on this machine's Codex
    workers, until SIGTERM or Ctrl-C.

    Several hosts poll one --task-queue; each has its own state dir (homes, logs). Prints one
    JSON line when ready (with --metrics-port, their HOST:PORT too). On SIGTERM running
    tasks get --drain seconds, then go back to the queue; every Codex process of the host is
    stopped. Exit 0 when stopped, 3 when the Temporal server cannot be reached.
    """
    try:  # only when asked: the `temporal` extra
        from codex_mcp_wrapper.temporal.host import HostOptions, serve_host
    except ImportError as exc:
        raise temporal_missing(exc) from exc

    target = temporal_settings(
        temporal, namespace, task_queue, shared_dir, affinity_wait, reconnect_within
    )
    assert target is not None
    settings = settings_from(
        ctx,
        workers=workers,
        approvals="accept" if auto_approve else "decline",
        **worker_settings(threads_per_worker, recycle_after_threads, recycle_above_mb),
        **codex_setup_settings(codex_home, sync_codex_config, mirror_auth, pass_env),
        temporal=target,
    )
    options = HostOptions(
        host=host_id or default_host_id(settings.state_dir),
        drain=drain,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
    )

    def ready(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    process.adopt_orphans()
    try:
        asyncio.run(serve_host(settings, target, options, ready))
    finally:
        process.sweep_descendants()


COMMANDS = (host,)
