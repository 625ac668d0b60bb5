"""``doctor``: checks of the Codex binary, its version, the sandbox, the state dir and auth;
given a mission file, also whether its model provider can be reached."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

from codex_mcp_wrapper.cli.options import settings_from
from codex_mcp_wrapper.codex.auth import find_credentials
from codex_mcp_wrapper.codex.turn_errors import REACH_ADVICE
from codex_mcp_wrapper.errors import EXIT_ENVIRONMENT, EXIT_OK, CodexNotFound
from codex_mcp_wrapper.settings import TESTED_CODEX_VERSIONS, Settings, find_codex_bin

CHECK_TIMEOUT = 30.0
# A TCP connect to a model provider: a reachable one answers in milliseconds; DNS and a
# firewall dropping packets take longest.
CONNECT_TIMEOUT = 5.0
OPENAI_BASE_URL = "https://api.openai.com/v1"  # Codex's own provider, with an API key


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def version_check(codex: str) -> Check:
    """``codex --version`` (``codex-cli X.Y.Z``); a version outside the tested ones only warns."""
    try:
        out = subprocess.run(
            [codex, "--version"],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("codex version", False, f"`codex --version` failed: {exc}")
    line = (out.stdout.strip().splitlines() or [""])[0].strip()
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("codex version", False, f"`codex --version` exited {out.returncode}: {reason}")
    if not line:
        return Check("codex version", False, "`codex --version` printed no version")
    if line.split()[-1] in TESTED_CODEX_VERSIONS:
        return Check("codex version", True, f"{line} (tested)")
    tested = ", ".join(TESTED_CODEX_VERSIONS)
    return Check(
        "codex version",
        False,
        f"{line} (not among the tested versions {tested}; it may work)",
        required=False,
    )


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    try:
        codex, origin = find_codex_bin(settings.codex_bin)
    except CodexNotFound as exc:
        return [Check("codex binary", False, str(exc))]
    checks.append(Check("codex binary", True, f"{codex} (from {origin})"))
    checks.append(version_check(codex))
    with tempfile.TemporaryDirectory(prefix="cmw-doctor-") as home:
        try:
            out = subprocess.run(
                [codex, "sandbox", "--", "/bin/sh", "-c", "echo sandbox-ok"],
                capture_output=True,
                text=True,
                timeout=CHECK_TIMEOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "CODEX_HOME": home},
                check=False,
            )
            ok = "sandbox-ok" in out.stdout
            detail = (
                "commands run in Codex's sandbox"
                if ok
                else (
                    "sandboxed commands fail here (no user namespaces?): "
                    + (out.stderr.strip().splitlines() or ["no output"])[-1]
                )
            )
            checks.append(Check("sandbox", ok, detail))
        except (OSError, subprocess.TimeoutExpired) as exc:
            checks.append(Check("sandbox", False, f"sandbox check failed: {exc}"))
    state = settings.state_dir
    try:
        state.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=state):
            pass
        checks.append(Check("state dir", True, f"{state} is writable"))
    except OSError as exc:
        checks.append(Check("state dir", False, f"{state} is not writable ({exc.strerror})"))
    found = find_credentials(settings)
    checks.append(Check("auth", found.ok, found.source or found.missing, required=False))
    return checks


def reach(url: str, timeout: float = CONNECT_TIMEOUT) -> Check:
    """Whether a TCP connection to the host and port of ``url`` is accepted."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return Check("provider", False, f"{url} cannot be reached ({why}): {REACH_ADVICE}")
    return Check("provider", True, f"{url} accepts connections")


def provider_check(mission_file: Path, settings: Settings) -> Check:
    """The model provider of a mission: a connection to its base URL (Codex's own provider:
    to api.openai.com); the scripted model needs none."""
    from codex_mcp_wrapper.missions.loading import load_mission
    from codex_mcp_wrapper.missions.model import CustomProvider

    provider = load_mission(mission_file).provider
    if settings.scripted or provider == "scripted":
        return Check("provider", True, "the scripted model (the wrapper starts it on 127.0.0.1)")
    if isinstance(provider, CustomProvider):
        return reach(provider.base_url)
    own = reach(OPENAI_BASE_URL)
    return Check("provider", own.ok, f"Codex's own: {own.detail}", required=False)


@click.command()
@click.argument("mission_file", required=False, type=click.Path(path_type=Path))
@click.pass_context
def doctor(ctx: click.Context, mission_file: Path | None) -> None:
    """Check the Codex binary, its version, the sandbox, the state dir and auth.

    With MISSION_FILE, also that the mission's model provider can be reached."""
    settings = settings_from(ctx)
    checks = run_checks(settings)
    if mission_file is not None:
        checks.append(provider_check(mission_file, settings))
    for check in checks:
        mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
        click.echo(f"[{mark}] {check.name}: {check.detail}")
    sys.exit(EXIT_OK if all(c.ok or not c.required for c in checks) else EXIT_ENVIRONMENT)


COMMANDS = (doctor,)
