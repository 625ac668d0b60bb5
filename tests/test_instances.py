"""Dev and released instances side by side: build, install, serve both, stop one, no orphans."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from tests.helpers.cli import run_cli
from tests.helpers.procs import codex_processes, environ, wait_gone

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts
    }


def ours(root: Path) -> list[int]:
    return [p for p in codex_processes() if str(root) in environ(p).get("CODEX_HOME", "")]


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for init to reap it counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def server_pid(home: Path) -> int:
    return int((home / "serve.pid").read_text().split()[0])


async def batch(url: str, workspace: Path, prompt: str) -> dict:
    mission = {"workspace_root": str(workspace), "tasks": [{"prompt": prompt}]}
    async with Client(url) as client:
        result = await client.call_tool("batch", {"mission": mission})
    assert result.structured_content is not None, result.content
    return result.structured_content


async def test_a_release_and_a_dev_instance_serve_side_by_side(
    tmp_path: Path, cli_env: dict[str, str], workspace: Path
) -> None:
    env = {**cli_env, "CODEX_MCP_WRAPPER_INSTANCES": str(tmp_path / "instances")}
    env.pop("CODEX_MCP_WRAPPER_HOME")  # each instance has its own state dir
    dist = tmp_path / "dist"
    built = run_cli(["release", "build", "--source", str(REPO), "--out", str(dist)], env)
    assert built.returncode == 0, built.stderr
    assert built.stderr.startswith("building the wheel of ")  # each long step is announced
    (release_dir,) = dist.iterdir()
    assert {p.name for p in release_dir.iterdir()} >= {"SHA256SUMS", "wrapper.toml", "install.sh"}
    installed = run_cli(
        [
            "--instance",
            "release",
            "release",
            "install",
            "--from",
            str(release_dir),
            "--without-codex",
        ],
        env,
        timeout=600,
    )  # Codex comes from $CODEX_BIN here
    assert installed.returncode == 0, installed.stderr
    assert [line.split()[0:2] for line in installed.stderr.splitlines()] == [
        ["checking", "the"],
        ["creating", "the"],
        ["installing", "codex_mcp_wrapper-0.1.0-py3-none-any.whl"],
    ], installed.stderr
    release_home = tmp_path / "instances" / "release"
    dev_home = tmp_path / "instances" / "dev"
    launcher = release_home / "bin" / "codex-mcp-wrapper"
    assert launcher.exists() and (release_home / "releases" / "current").is_symlink()
    release_files = tree_hashes(release_home / "releases")

    ports = {"release": free_port(), "dev": free_port()}
    try:
        for name, port in ports.items():
            started = run_cli(
                [
                    *("--instance", name, "serve", "start", "--port", str(port)),
                    *("--scripted", "--workspace", str(workspace)),
                ],
                env,
            )
            assert started.returncode == 0, started.stderr
        release_cmd = Path(f"/proc/{server_pid(release_home)}/cmdline").read_bytes()
        dev_cmd = Path(f"/proc/{server_pid(dev_home)}/cmdline").read_bytes()
        assert str(release_home / "releases").encode() in release_cmd  # the installed build
        assert str(release_home).encode() not in dev_cmd  # the checkout's code

        urls = {name: f"http://127.0.0.1:{port}/mcp" for name, port in ports.items()}
        for name, url in urls.items():
            data = await batch(url, workspace, f"hello {name}")
            assert data["status"] == "ok" and data["errors"] == []
            assert data["results"][0]["stdout"] == f"echo: hello {name}"

        # Disjoint state: each run is recorded only by its own instance.
        release_runs = {p.name for p in (release_home / "state" / "runs").iterdir()}
        dev_runs = {p.name for p in (dev_home / "state" / "runs").iterdir()}
        assert release_runs and dev_runs and not release_runs & dev_runs
        for home in (release_home, dev_home):
            workers = {str(p) for p in (home / "state" / "workers").iterdir()}
            assert workers and all(w.startswith(str(home)) for w in workers)

        busy = run_cli(["--instance", "qa", "serve", "start", "--port", str(ports["dev"])], env)
        assert busy.returncode == 3
        assert f"port {ports['dev']} is busy, held by instance 'dev'" in busy.stderr
        again = run_cli(
            ["--instance", "release", "serve", "start", "--port", str(free_port())], env
        )
        assert again.returncode == 3 and "instance 'release' is already serving" in again.stderr

        rebuilt = run_cli(["release", "build", "--source", str(REPO), "--out", str(dist)], env)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert tree_hashes(release_home / "releases") == release_files

        listed = json.loads(run_cli(["instances", "list", "--json"], env).stdout)
        by_name = {row["name"]: row for row in listed}
        assert by_name["release"]["running"] and by_name["dev"]["running"]
        for name, port in ports.items():  # where the servers listen, not the default ports
            assert by_name[name]["port"] == port
        assert (by_name["dev"]["default_port"], by_name["release"]["default_port"]) == (4105, 4106)
        assert by_name["release"]["binary"] == str(launcher)
        assert by_name["release"]["state_dir"] != by_name["dev"]["state_dir"]

        release_pid = server_pid(release_home)
        stopped = run_cli(["--instance", "release", "serve", "stop"], env)
        assert stopped.returncode == 0, stopped.stderr
        assert gone(release_pid)
        data = await batch(urls["dev"], workspace, "still here")
        assert data["status"] == "ok"
        status = run_cli(["--instance", "release", "serve", "status"], env)
        assert status.returncode == 1 and "not running" in status.stdout
    finally:
        workers = ours(tmp_path / "instances")
        for name in ports:
            run_cli(["--instance", name, "serve", "stop"], env)
    assert wait_gone(workers, timeout=15)
    assert not ours(tmp_path / "instances")


def test_a_stale_pid_file_is_detected_and_cleaned(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CODEX_MCP_WRAPPER_INSTANCES": str(tmp_path / "instances")}
    home = tmp_path / "instances" / "dev"
    home.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (home / "serve.pid").write_text(f"{dead.pid} 4105\n")
    status = run_cli(["--instance", "dev", "serve", "status"], env)
    assert status.returncode == 1 and "stale pid file" in status.stdout
    stop = run_cli(["--instance", "dev", "serve", "stop"], env)
    assert stop.returncode == 0 and not (home / "serve.pid").exists()


def test_instances_list_shows_the_port_a_running_server_listens_on(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "CODEX_MCP_WRAPPER_INSTANCES": str(tmp_path / "instances")}
    home = tmp_path / "instances" / "dev"
    home.mkdir(parents=True)
    port = free_port()
    # A stand-in for a server started with `serve start --port PORT`: the pid file names a live
    # process whose command line is a wrapper's `serve`.
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "codex-mcp-wrapper", "serve"]
    )
    try:
        (home / "serve.pid").write_text(f"{server.pid} {port}\n")
        listed = run_cli(["instances", "list", "--json"], env)
        assert listed.returncode == 0, listed.stderr
        dev = {row["name"]: row for row in json.loads(listed.stdout)}["dev"]
        assert (dev["running"], dev["port"], dev["default_port"]) == (True, port, 4105)
        text = run_cli(["instances", "list"], env)
        line = next(ln for ln in text.stdout.splitlines() if ln.startswith("dev "))
        assert f"port {port} (default 4105)" in line and "running" in line
    finally:
        server.kill()
        server.wait()
    listed = run_cli(["instances", "list", "--json"], env)
    dev = {row["name"]: row for row in json.loads(listed.stdout)}["dev"]
    assert (dev["running"], dev["port"], dev["default_port"]) == (False, 4105, 4105)
    release = {row["name"]: row for row in json.loads(listed.stdout)}["release"]
    assert (release["running"], release["port"], release["default_port"]) == (False, 4106, 4106)


def test_export_prints_wiring_for_codex_clients_pm2_and_hubs(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    env = {
        **cli_env,
        "CODEX_MCP_WRAPPER_INSTANCES": str(tmp_path / "instances"),
        "CODEX_WRAPPER_BIN": "/opt/wrapper/bin/codex-mcp-wrapper",
        "CODEX_WRAPPER_CONFIG": "/etc/wrapper.toml",
    }
    out = run_cli(["--instance", "release", "export"], env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "[mcp_servers.codex-wrapper]" in data["codex_config_toml"]
    stdio = data["mcp_servers_json"]["stdio"]["mcpServers"]["codex-wrapper"]
    assert stdio["command"] == "/opt/wrapper/bin/codex-mcp-wrapper"
    assert stdio["args"] == ["--instance", "release", "serve", "--config", "/etc/wrapper.toml"]
    assert data["mcp_servers_json"]["http"]["mcpServers"]["codex-wrapper"]["url"] == (
        "http://127.0.0.1:4106/mcp"
    )
    assert data["pm2_ecosystem_app"]["name"] == "codex-wrapper"
    dev = json.loads(run_cli(["--instance", "dev", "export"], env).stdout)
    assert dev["pm2_ecosystem_app"]["name"] == "codex-wrapper-dev"
    assert dev["hub_descriptor"]["http"]["url"] == "http://127.0.0.1:4105/mcp"
    pm2 = run_cli(["--instance", "dev", "export", "--format", "pm2"], env).stdout
    assert pm2.startswith("module.exports = {") and "codex-wrapper-dev" in pm2
    assert os.environ.get("CODEX_WRAPPER_BIN") is None
