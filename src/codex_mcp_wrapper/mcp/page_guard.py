"""``PageGuard``: who a request for the web pages beside MCP (``serve --ui`` over HTTP) comes
from, when the server has bearer tokens.

A script sends ``Authorization: Bearer TOKEN``, as an MCP client does. A browser, which sends
no such header by itself, gives its token once on the login page (``/login``) and gets a
session cookie instead: a random id (never the token itself) that is HttpOnly, SameSite=Strict
(no other site's request carries it) and lasts as long as the browser session and this server
process. A browser asking for a page without either is sent to the login page; any other
request without them is refused (401). The Host/Origin allowlist is checked before this
(``transports._beside``), so another site cannot post the login form either. Without tokens
(a loopback server) every request is the anonymous identity, as for MCP.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from codex_mcp_wrapper.engine.access import Identity
from codex_mcp_wrapper.engine.pages.run_page import environment
from codex_mcp_wrapper.mcp.http_guard import ClientTokens, identified

LOGIN_PATH = "/login"
COOKIE = "codex_mcp_wrapper_session"
MAX_SESSIONS = 1000  # browsers signed in at once; the oldest session ends first


def login_page(refused: bool = False) -> str:
    """The sign-in page (``engine/pages/templates/login.html``)."""
    return environment().get_template("login.html").render(refused=refused)


class PageGuard:
    """The pages' guard: a bearer token or a session cookie, else the login page."""

    def __init__(self, app: ASGIApp, tokens: Mapping[str, Identity]) -> None:
        self.app = app
        self.tokens = ClientTokens(app, tokens)
        self.sessions: OrderedDict[bytes, Identity] = OrderedDict()  # by the id's digest

    def __repr__(self) -> str:
        return f"<PageGuard [{len(self.tokens.digests)} tokens | {len(self.sessions)} sessions]>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens.digests:
            await self.tokens(scope, receive, send)  # no tokens: everyone is anonymous
            return
        request = Request(scope, receive)
        if scope["path"] == LOGIN_PATH:
            await self._login(request)(scope, receive, send)
            return
        who = self._who(request)
        if who is None:
            html = "text/html" in request.headers.get("accept", "")
            if request.method == "GET" and html:
                await RedirectResponse(LOGIN_PATH, status_code=303)(scope, receive, send)
                return
            await self.tokens(scope, receive, send)  # refused there, as an MCP request is
            return
        identified(scope, who)
        await self.app(scope, receive, send)

    def _who(self, request: Request) -> Identity | None:
        header = request.headers.get("authorization")
        if header is not None:
            return self.tokens.identify(header.encode())
        session = request.cookies.get(COOKIE)
        if session is None:
            return None
        return self.sessions.get(hashlib.sha256(session.encode()).digest())

    def _login(self, request: Request) -> ASGIApp:
        """The login page, or what a sign-in gets: the runs page with a session cookie."""

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            response: Response = HTMLResponse(login_page())
            if request.method == "POST":
                token = str((await request.form()).get("token", "")).strip()
                who = self.tokens.identify(b"Bearer " + token.encode())
                if who is None:
                    response = HTMLResponse(login_page(refused=True), 401)
                else:
                    response = RedirectResponse("/", status_code=303)
                    session = self._session(who)
                    response.set_cookie(COOKIE, session, httponly=True, samesite="strict")
            elif request.method != "GET":
                response = Response("use GET or POST", 405)
            await response(scope, receive, send)

        return answer

    def _session(self, who: Identity) -> str:
        """A new session of ``who``; its id."""
        session = secrets.token_urlsafe(32)
        self.sessions[hashlib.sha256(session.encode()).digest()] = who
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        return session
