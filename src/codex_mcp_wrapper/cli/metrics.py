"""``--metrics-port`` and ``--metrics-host``: Prometheus metrics of ``serve`` (unauthenticated:
loopback unless told otherwise). ``prometheus_client`` is imported only when asked for."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from codex_mcp_wrapper.engine.metrics import RunMetrics
    from codex_mcp_wrapper.engine.runs import Runs

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(func: F) -> F:
    """The two options, on a command that runs tasks."""
    func = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="Bind address of --metrics-port. The metrics page has no authentication: "
        "bind elsewhere than loopback only on a network you trust.",
    )(func)
    return click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        help="Serve Prometheus metrics on http://HOST:PORT/metrics (0: any free port, "
        "printed on stderr): tasks by status, slots, Codex processes and their memory, "
        "queue wait, MCP calls.",
    )(func)


@contextlib.contextmanager
def serving_metrics(runs: Runs, host: str, port: int | None) -> Iterator[RunMetrics | None]:
    """While the block runs, ``runs``' events and its local workers as metrics on
    HOST:PORT (nothing when ``port`` is None)."""
    if port is None:
        yield None
        return
    from codex_mcp_wrapper.codex.backend import LocalBackend
    from codex_mcp_wrapper.engine.metrics import RunMetrics

    backend = runs.backend
    fleet = backend.fleet if isinstance(backend, LocalBackend) else None
    metrics = RunMetrics(fleet.state if fleet is not None else lambda: None)
    bound = metrics.serve(host, port)
    click.echo(f"metrics on http://{host}:{bound}/metrics", err=True)
    runs.observers.append(metrics.observe)
    try:
        yield metrics
    finally:
        runs.observers.remove(metrics.observe)
        metrics.close()
