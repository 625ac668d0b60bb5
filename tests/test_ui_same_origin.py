"""The web UI keeps other web sites out: a page of another site cannot make the user's browser
apply a patch (cross-site request forgery), and a name rebound to 127.0.0.1 (DNS rebinding)
gets nothing. ``codex-mcp-wrapper ui`` is served by the CLI over a real state dir; the attacks
come from real HTTP requests and from Debian's chromium, which resolves ``evil.example`` to
127.0.0.1 and loads the attacker's page from a server of its own."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.test_ui import CHROMIUM, CHROMIUM_ARGS, LIVE, ui_url  # noqa: F401 - the fixture
from tests.test_worktrees import make_repo, sh

HTTP_TIMEOUT = 30.0  # seconds for one request to the UI
WRITER = """\
mission_id: ui-guard
workspace_root: {ws}
provider: scripted
defaults: {{sandbox: workspace-write}}
tasks:
  - id: writer
    prompt: change the first line
    isolation: worktree
    script:
      - shell: "sed -i 's/one/WRITTEN/' shared.txt"
      - say: changed shared.txt
"""
# The attacker's page: a form posting to the UI, sent as soon as the page loads.
ATTACK = """<!doctype html><html><body>
<form id="f" method="post" action="{target}"><input name="x" value="1"></form>
<script>document.getElementById("f").submit()</script></body></html>"""


def request(
    url: str, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    """One request to the UI at ``url`` with exactly ``headers`` (Host included when given):
    its status, headers and body; redirects are not followed."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT)
    try:
        body = "x=1" if method == "POST" else None
        sent = headers | ({"Content-Type": "application/x-www-form-urlencoded"} if body else {})
        conn.request(method, path, body=body, headers=sent)
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode()
    finally:
        conn.close()


@pytest.fixture
def patched(tmp_path: Path, cli_env: dict[str, str], state_dir: Path) -> tuple[Path, str]:
    """A workspace and a finished run whose task ``writer`` left a patch to apply there."""
    ws = make_repo(tmp_path / "ws")
    mission = tmp_path / "m.yaml"
    mission.write_text(WRITER.format(ws=ws))
    done = run_cli(["run", str(mission)], cli_env)
    assert done.returncode == 0, done.stderr
    (run,) = (state_dir / "runs").iterdir()
    return ws, run.name


@pytest.fixture
def attacker() -> Iterator[tuple[int, dict[str, str]]]:
    """Another site's web server on 127.0.0.1: its port, and the pages it serves by path (the
    test fills them in)."""
    pages: dict[str, str] = {}

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages) as server:
        serving = threading.Thread(target=server.serve_forever)
        serving.start()
        try:
            yield server.server_address[1], pages
        finally:
            server.shutdown()
            serving.join(HTTP_TIMEOUT)


@pytest.fixture
def rebinding_browser() -> Iterator[object]:
    """Chromium resolving ``evil.example`` to 127.0.0.1, as a rebound DNS name would."""
    from playwright.sync_api import sync_playwright

    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
        try:
            yield chromium
        finally:
            chromium.close()


def unchanged(ws: Path) -> bool:
    return (ws / "shared.txt").read_text() == "one\ntwo\nthree\n"


def test_another_sites_page_cannot_apply_a_patch_but_the_uis_own_button_does(
    patched: tuple[Path, str],
    ui_url: str,  # noqa: F811 - the fixture
    attacker: tuple[int, dict[str, str]],
    rebinding_browser: object,
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(rebinding_browser, Browser)
    ws, run_id = patched
    port, pages = attacker
    apply = f"{ui_url}/runs/{run_id}/tasks/writer/apply"
    pages["/"] = ATTACK.format(target=apply)
    page = rebinding_browser.new_page()
    with page.expect_response(apply, timeout=LIVE) as posted:
        page.goto(f"http://evil.example:{port}/")
    assert posted.value.status == 403
    assert "another site" in page.inner_text("body")
    assert unchanged(ws)

    # DNS rebinding: the attacker's name, now 127.0.0.1, reaches the UI's port.
    rebound = ui_url.replace("127.0.0.1", "evil.example")
    answer = page.goto(f"{rebound}/runs/{run_id}")
    assert answer is not None and answer.status == 421
    assert run_id not in page.inner_text("body")

    # The UI's own page, its own form: applied.
    page.goto(f"{ui_url}/runs/{run_id}")
    page.get_by_role("button", name="Apply the diff of writer to the workspace").click()
    page.wait_for_selector("p[role=status]", timeout=LIVE)
    assert (ws / "shared.txt").read_text().startswith("WRITTEN\n")
    assert "shared.txt" in sh("git", "status", "--porcelain", cwd=ws)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "null"}, 403),  # a sandboxed frame, a data: page
        ({"Referer": "http://evil.example/page"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),  # another port of this machine
    ],
    ids=["foreign-host", "foreign-origin", "null-origin", "foreign-referer", "cross", "same-site"],
)
def test_a_post_from_anywhere_but_the_uis_own_pages_is_refused_and_changes_nothing(
    patched: tuple[Path, str],
    ui_url: str,  # noqa: F811 - the fixture
    headers: dict[str, str],
    status: int,
) -> None:
    ws, run_id = patched
    for action in ("tasks/writer/apply", "cancel", "tasks/writer/steer", "tasks/writer/cancel"):
        got, sent_back, body = request(ui_url, "POST", f"/runs/{run_id}/{action}", headers)
        assert got == status, (action, body)
        assert body.count("\n") == 1 and body.endswith(".\n"), body  # one sentence
        assert sent_back["content-security-policy"] == "frame-ancestors 'none'"
    assert unchanged(ws)


def test_the_uis_own_origin_and_a_client_that_sends_no_origin_may_post(
    patched: tuple[Path, str],
    ui_url: str,  # noqa: F811 - the fixture
) -> None:
    ws, run_id = patched
    port = ui_url.rsplit(":", 1)[1]
    steer = f"/runs/{run_id}/tasks/writer/steer"
    # The same machine by another of its loopback names, the UI's own origin and referrer:
    # the action runs (the task is over: nothing to steer, said on the run page).
    for headers in (
        {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
        {"Origin": ui_url},
        {"Referer": f"{ui_url}/runs/{run_id}", "Sec-Fetch-Site": "same-origin"},
        {},  # curl: no Origin, no Referer, no Sec-Fetch-Site
    ):
        got, sent_back, _ = request(ui_url, "POST", steer, headers)
        assert got == 303, headers
        assert sent_back["location"].startswith(f"/runs/{run_id}?message="), sent_back
    # Reading is open to links from anywhere, on the UI's own names only.
    assert request(ui_url, "GET", "/", {"Referer": "http://evil.example/"})[0] == 200
    assert request(ui_url, "GET", "/", {"Host": f"[::1]:{port}"})[0] == 200
    assert request(ui_url, "GET", "/", {"Host": f"127.0.0.1:{int(port) + 1}"})[0] == 421
    # The no-origin client applies the patch, as `runs apply` would.
    got, _, _ = request(ui_url, "POST", f"/runs/{run_id}/tasks/writer/apply", {})
    assert got == 303 and not unchanged(ws)
