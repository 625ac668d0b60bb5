"""`doctor` names the Codex version and says whether it is one the suite is run on."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from codex_mcp_wrapper.settings import PINNED_CODEX_VERSION, TESTED_CODEX_VERSIONS

REPO = Path(__file__).resolve().parents[1]
TESTED = ", ".join(TESTED_CODEX_VERSIONS)


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def fake_codex(tmp_path: Path, body: str) -> dict[str, str]:
    """An environment whose $CODEX_BIN is a shell script with this body."""
    script = tmp_path / "codex"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return {**os.environ, "CODEX_BIN": str(script), "CODEX_MCP_WRAPPER_HOME": str(tmp_path / "s")}


def test_the_tested_versions_are_the_pinned_package_and_the_npm_release_ci_runs() -> None:
    script = (REPO / "scripts" / "test.sh").read_text()
    npm = re.search(r'CODEX_NPM_VERSION="\$\{CODEX_NPM_VERSION:-([0-9.]+)\}"', script)
    assert npm, "scripts/test.sh no longer pins the npm Codex version"
    assert (PINNED_CODEX_VERSION, npm.group(1)) == TESTED_CODEX_VERSIONS
    assert f"openai-codex-cli-bin=={PINNED_CODEX_VERSION}" in (REPO / "pyproject.toml").read_text()


@pytest.mark.codex
@pytest.mark.pinned_codex
def test_doctor_says_the_pinned_codex_is_tested(tmp_path: Path) -> None:
    env = {**os.environ, "CODEX_MCP_WRAPPER_HOME": str(tmp_path / "state")}
    env.pop("CODEX_BIN", None)  # the pinned package must be found
    proc = doctor(env)
    assert proc.returncode == 0, proc.stdout
    assert f"(from openai-codex-cli-bin {PINNED_CODEX_VERSION})" in proc.stdout
    assert f"[ok  ] codex version: codex-cli {PINNED_CODEX_VERSION} (tested)\n" in proc.stdout


def test_doctor_reports_the_version_of_the_codex_under_test(
    cli_env: dict[str, str], codex_bin: str
) -> None:
    """Run by both passes of scripts/test.sh, so on every tested version."""
    version = subprocess.run(
        [codex_bin, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    proc = doctor(cli_env)
    assert proc.returncode == 0, proc.stdout
    if version.split()[-1] in TESTED_CODEX_VERSIONS:
        assert f"[ok  ] codex version: {version} (tested)\n" in proc.stdout
    else:
        line = f"[warn] codex version: {version} (not among the tested versions {TESTED}; it may"
        assert line in proc.stdout


def test_an_untested_codex_version_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    proc = doctor(fake_codex(tmp_path, 'echo "codex-cli 9.9.9"'))
    expected = (
        f"[warn] codex version: codex-cli 9.9.9 (not among the tested versions {TESTED}; "
        "it may work)\n"
    )
    assert expected in proc.stdout
    assert "[FAIL] codex version" not in proc.stdout
    assert "[FAIL] sandbox" in proc.stdout  # the script is no Codex: this check fails instead


def test_a_codex_whose_version_command_fails_is_a_failure(tmp_path: Path) -> None:
    proc = doctor(fake_codex(tmp_path, "echo broken >&2; exit 7"))
    assert proc.returncode == 3
    assert "[FAIL] codex version: `codex --version` exited 7: broken\n" in proc.stdout


def test_doctor_given_a_mission_says_whether_its_provider_can_be_reached(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A TCP connect to the mission provider's base URL (127.0.0.1 here): a closed port is a
    failure naming the URL and what to check; a listening one is ok."""
    mission = tmp_path / "m.yaml"
    with socket.socket() as closed, socket.socket() as listening:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        for sock in (closed, listening):
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
            mission.write_text(
                f"workspace_root: {tmp_path}\nprovider: {{base_url: '{url}'}}\n"
                "tasks: [{prompt: hi}]\n"
            )
            proc = doctor(cli_env, str(mission))
            if sock is closed:
                assert proc.returncode == 3, proc.stdout
                assert (
                    f"[FAIL] provider: {url} cannot be reached (Connection refused): check that "
                    "it is running and listening at that address and that this machine can reach "
                    "it (network, proxy, firewall)\n"
                ) in proc.stdout
            else:
                assert proc.returncode == 0, proc.stdout
                assert f"[ok  ] provider: {url} accepts connections\n" in proc.stdout
