"""The UI's pages and actions: a Starlette app over one ``Runs``. Reads and actions go through
the application API only; a run's live state is streamed as server-sent events (the server
reads the store every ``POLL_INTERVAL``, so runs of other processes show live too)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from codex_mcp_wrapper.engine.access import Identity
from codex_mcp_wrapper.engine.pages.run_page import environment, render, run_page
from codex_mcp_wrapper.engine.results import TaskResult
from codex_mcp_wrapper.engine.run_state import Baselines
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.errors import InputError, WrapperError
from codex_mcp_wrapper.ui.transcript import transcript

if TYPE_CHECKING:
    import jinja2

POLL_INTERVAL = 0.5  # how often a run's stream reads the store: live enough, cheap enough
LIST_LIMIT = 200  # runs on the list page
PATCH_SHOWN = 200_000  # characters of a patch the page shows; the file has it all
# Whom a request comes from (``serve --ui`` over HTTP: the client its bearer token names);
# None, the state dir's owner, sees every run (``ui``).
Who = Callable[[Request], Identity | None]


def owner(_request: Request) -> Identity | None:
    return None


def templates() -> jinja2.Environment:
    """The UI's templates over the run page's (``engine.pages``: the report's too)."""
    return environment("codex_mcp_wrapper.ui")


class Dashboard:
    """The pages of the UI over ``runs``."""

    def __init__(self, runs: Runs, who: Who = owner) -> None:
        self.runs = runs
        self.who = who
        self.env = templates()
        self.stopping = asyncio.Event()  # set when the server stops: event streams end

    def stop(self) -> None:
        """End the event streams open now and to come (the server is stopping)."""
        self.stopping.set()

    async def _paused(self) -> bool:
        """Wait ``POLL_INTERVAL``; True when the server stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), POLL_INTERVAL)
        return self.stopping.is_set()

    def __repr__(self) -> str:
        return f"<Dashboard {self.runs.settings.state_dir}>"

    def _page(self, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status_code)

    def _error(self, exc: WrapperError) -> HTMLResponse:
        return self._page("error.html", status_code=404, message=str(exc))

    async def run_list(self, request: Request) -> Response:
        mission = request.query_params.get("mission", "")
        status = request.query_params.get("status", "")
        rows = [
            row
            for row in self.runs.list(LIST_LIMIT, self.who(request))
            if (not mission or row.mission_id == mission) and (not status or row.status == status)
        ]
        return self._page("runs.html", rows=rows, mission=mission, status=status)

    async def run_page(self, request: Request) -> Response:
        run_id, client = request.path_params["run_id"], self.who(request)
        try:
            state = self.runs.status(run_id, client)
        except WrapperError as exc:
            return self._error(exc)
        live = run_page(
            state,
            live=True,
            transcript=lambda task_id: f"/runs/{quote(run_id)}/tasks/{quote(task_id)}/transcript",
            patch=lambda result: self._patch(run_id, result, client),
            message=request.query_params.get("message", ""),
        )
        baselines = self._baselines(run_id, client) if state.summary is not None else None
        return HTMLResponse(render(live, self.env, baselines=baselines))

    def _baselines(self, run_id: str, client: Identity | None) -> Baselines | None:
        """The runs the run page offers to compare with (None: none to offer)."""
        try:
            return self.runs.baselines(run_id, client=client)
        except WrapperError:
            return None

    async def run_diff(self, request: Request) -> Response:
        """What ``runs diff BASE RUN`` shows, as a page: ``/runs/RUN/diff?base=BASE`` (without
        ``base``: the newest run of the mission that ended ok before RUN)."""
        run_id, client = request.path_params["run_id"], self.who(request)
        base = request.query_params.get("base", "")
        try:
            base = base or self.runs.baselines(run_id, client=client).default or ""
            comparison = self.runs.compare(base, run_id, client) if base else None
        except WrapperError as exc:
            return self._error(exc)
        if comparison is None:
            return self._error(
                InputError(
                    f"no run of the mission of run {run_id} ended ok before it; choose one to "
                    "compare with on the run's page."
                )
            )
        changed = sorted(
            (t for t in comparison.tasks if t.changed), key=lambda t: (not t.regressed, not t.fixed)
        )
        return self._page(
            "diff.html",
            comparison=comparison,
            changed=changed,
            unchanged=[t.task_id for t in comparison.tasks if not t.changed],
            said={True: "passed", False: "failed", None: "absent"},
        )

    async def run_events(self, request: Request) -> Response:
        run_id, client = request.path_params["run_id"], self.who(request)
        try:
            self.runs.status(run_id, client)
        except WrapperError as exc:
            return self._error(exc)

        async def stream() -> AsyncIterator[str]:
            last = None
            while True:
                state = self.runs.status(run_id, client)
                data = json.dumps(
                    {
                        "status": state.status,
                        "done": state.done,
                        "tasks": {t.task_id: t.status for t in state.tasks},
                    }
                )
                if data != last:
                    last = data
                    yield f"data: {data}\n\n"
                if state.done or await self._paused():
                    return

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def task_transcript(self, request: Request) -> Response:
        run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
        try:
            path = self.runs.task_file(run_id, task_id, "events.jsonl", self.who(request))
        except WrapperError as exc:
            return self._error(exc)
        entries = transcript(path)
        return self._page("transcript.html", run_id=run_id, task_id=task_id, entries=entries)

    def _patch(self, run_id: str, result: TaskResult, client: Identity | None) -> str:
        """A worktree task's patch, read through ``Runs.task_file`` (it is in its task's
        folder); ``""`` when there is none."""
        patch = result.diff.patch if result.diff else None
        parts = Path(patch).parts if patch else ()
        for i in range(len(parts) - 1):
            if parts[i] == "tasks" and parts[i + 1] == result.task_id:
                name = "/".join(parts[i + 2 :])
                try:
                    path = self.runs.task_file(run_id, result.task_id, name, client)
                    return path.read_text(errors="replace")[:PATCH_SHOWN]
                except WrapperError:
                    return ""
        return ""

    async def run_list_events(self, request: Request) -> Response:
        client = self.who(request)

        async def stream() -> AsyncIterator[str]:
            last = None
            while True:
                rows = [
                    {"run_id": r.run_id, "mission_id": r.mission_id, "status": r.status}
                    for r in self.runs.list(LIST_LIMIT, client)
                ]
                data = json.dumps(rows)
                if data != last:
                    last = data
                    yield f"data: {data}\n\n"
                if await self._paused():
                    return

        return StreamingResponse(stream(), media_type="text/event-stream")

    def _back(self, run_id: str, message: str) -> Response:
        url = request_url(run_id, message)
        return RedirectResponse(url, status_code=303)

    async def apply(self, request: Request) -> Response:
        run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
        try:
            done = await self.runs.apply(run_id, task_id, client=self.who(request))
        except WrapperError as exc:
            done = str(exc)
        return self._back(run_id, done)

    async def cancel(self, request: Request) -> Response:
        """Cancel the run, or one running task of it (in whichever process drives it)."""
        run_id, task_id = request.path_params["run_id"], request.path_params.get("task_id")
        try:
            state = await self.runs.cancel(run_id, self.who(request), task_id)
        except WrapperError as exc:
            return self._back(run_id, str(exc))
        said = f"not cancelled: {state.message}"
        if state.cancelled:
            said = f"cancelled task {task_id}" if task_id else "cancelled"
        return self._back(run_id, said)

    async def steer(self, request: Request) -> Response:
        run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
        text = str((await request.form()).get("text", ""))
        try:
            turn = await self.runs.steer(run_id, task_id, text, self.who(request))
            said = f"steered turn {turn}"
        except WrapperError as exc:
            said = str(exc)
        return self._back(run_id, said)


def request_url(run_id: str, message: str) -> str:
    """The run page's address, showing ``message`` (what an action did)."""
    from urllib.parse import quote

    return f"/runs/{quote(run_id)}?message={quote(message)}"


def dashboard_app(runs: Runs, who: Who = owner) -> Starlette:
    """The UI as an ASGI app; ``who`` tells whom each request comes from (default: the
    state dir's owner, who sees every run)."""
    pages = Dashboard(runs, who)
    task = "/runs/{run_id}/tasks/{task_id}"
    app = Starlette(
        routes=[
            Route("/", pages.run_list),
            Route("/events", pages.run_list_events),
            Route("/runs/{run_id}", pages.run_page),
            Route("/runs/{run_id}/events", pages.run_events),
            Route("/runs/{run_id}/diff", pages.run_diff),
            Route("/runs/{run_id}/cancel", pages.cancel, methods=["POST"]),
            Route(f"{task}/transcript", pages.task_transcript),
            Route(f"{task}/apply", pages.apply, methods=["POST"]),
            Route(f"{task}/steer", pages.steer, methods=["POST"]),
            Route(f"{task}/cancel", pages.cancel, methods=["POST"]),
        ]
    )
    app.state.dashboard = pages
    return app
