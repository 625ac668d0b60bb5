"""``serve --ui``: the web UI served by the MCP server over the runs of its clients. Over HTTP
the page is on the server's own port, at every path but ``/mcp``, behind the same bearer
tokens and Host/Origin allowlist, and each client sees the runs it may see over MCP (its own;
an admin every run). Over stdio it is on a loopback port of its own (``--ui-port``), printed
on stderr, showing the state dir's runs as ``ui`` does. The UI's modules (Starlette pages,
Jinja2 templates) are imported only then, so a stdio server without it starts as fast."""

from __future__ import annotations

from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.mcp.call_timing import CallRecord
from codex_mcp_wrapper.mcp.stdio_front import StdioFront
from codex_mcp_wrapper.mcp.transports import Pages, serve_stdio


def http_pages(runs: Runs) -> Pages:
    """The UI as pages beside MCP, each request answered for the client that sent it."""
    from codex_mcp_wrapper.mcp.identity import identity_of
    from codex_mcp_wrapper.ui.pages import dashboard_app

    app = dashboard_app(runs, identity_of)
    return Pages(app, app.state.dashboard.stop)


async def stdio_with_ui(
    runs: Runs, front: StdioFront, timing: CallRecord | None, ui_port: int
) -> None:
    """``serve_stdio`` with the UI on a loopback port beside it, stopped with it."""
    from codex_mcp_wrapper.ui.serving import ui_beside

    async with ui_beside(runs, ui_port):
        await serve_stdio(runs, front, timing)
