"""Releases: build a wheel with checksums, install it into an instance's own virtualenv.

    dist/releases/<version>/  codex_mcp_wrapper-<version>-py3-none-any.whl, SHA256SUMS,
                              wrapper.toml, install.sh
    <instance>/releases/<version>/venv    a virtualenv with that wheel (and Codex)
    <instance>/releases/current -> <version>
    <instance>/bin/codex-mcp-wrapper      a stable launcher through releases/current

The dev checkout's editable install and an installed release are separate programs; upgrading
is an explicit install of a newer build, rolling back is ``release use OLD_VERSION``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import tomli_w

from codex_mcp_wrapper.errors import EnvironmentProblem, InputError
from codex_mcp_wrapper.instances.registry import Instance

BUILD_TIMEOUT = 600
INSTALL_SCRIPT = """#!/bin/sh
# Install this release into a new virtualenv: sh install.sh TARGET_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
target=${1:?usage: install.sh TARGET_DIR}
python3 -m venv "$target"
"$target/bin/python" -m pip install -q "$here"/*.whl "openai-codex-cli-bin==0.163.0"
echo "installed: $target/bin/codex-mcp-wrapper"
"""
LAUNCHER = """#!/bin/sh
# Launcher of the installed codex-mcp-wrapper release for instance '{name}'.
exec "{home}/releases/current/venv/bin/codex-mcp-wrapper" "$@"
"""


# Told each long step as it begins (what it does, in a few words): the CLI shows it.
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"{what} failed: {exc}.") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EnvironmentProblem(f"{what} failed: {' | '.join(tail)}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build(source: Path, out_root: Path, version: str, progress: Progress = _quiet) -> Path:
    """Build the wheel of ``source`` into ``out_root/<version>``; returns that folder."""
    if not (source / "pyproject.toml").is_file():
        raise InputError(f"{source} is not a checkout of codex-mcp-wrapper (no pyproject.toml).")
    target = out_root / version
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    progress(f"building the wheel of {source}")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(target), str(source)],
        "building the wheel",
    )
    wheels = sorted(target.glob("*.whl"))
    if len(wheels) != 1:
        raise EnvironmentProblem(f"expected one wheel in {target}, found {len(wheels)}.")
    (target / "install.sh").write_text(INSTALL_SCRIPT)
    (target / "install.sh").chmod(0o755)
    (target / "wrapper.toml").write_text(
        tomli_w.dumps(
            {
                "release": {
                    "version": version,
                    "wheel": wheels[0].name,
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "source": str(source.resolve()),
                },
                "codex": {"package": "openai-codex-cli-bin==0.163.0"},
            }
        )
    )
    sums = [f"{sha256(p)}  {p.name}" for p in sorted(target.iterdir()) if p.is_file()]
    (target / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return target


def verify(build_dir: Path) -> None:
    for line in (build_dir / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        if sha256(build_dir / name.strip()) != digest:
            raise EnvironmentProblem(f"{build_dir / name}: checksum mismatch; rebuild it.")


def install(
    build_dir: Path, inst: Instance, with_codex: bool = True, progress: Progress = _quiet
) -> Path:
    """Install a built release into the instance; point ``releases/current`` and the launcher
    at it. Returns the release's folder."""
    progress("checking the release's checksums")
    verify(build_dir)
    version = build_dir.name
    wheel = next(build_dir.glob("*.whl"))
    target = inst.releases / version
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    progress(f"creating the virtualenv {target / 'venv'}")
    _run([sys.executable, "-m", "venv", str(target / "venv")], "creating the virtualenv")
    packages = [str(wheel)] + (["openai-codex-cli-bin==0.163.0"] if with_codex else [])
    progress(f"installing {wheel.name}" + (" and Codex" if with_codex else "") + " (pip)")
    _run(
        [str(target / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", *packages],
        f"installing {wheel.name}",
    )
    shutil.copy2(build_dir / "wrapper.toml", target / "wrapper.toml")
    use(inst, version)
    return target


def use(inst: Instance, version: str) -> None:
    """Point the instance at an installed version (upgrade or roll back)."""
    if not (inst.releases / version / "venv").is_dir():
        installed = sorted(p.name for p in inst.releases.glob("*") if (p / "venv").is_dir())
        raise InputError(
            f"version {version} is not installed in instance '{inst.name}' "
            f"(installed: {', '.join(installed) or 'none'})."
        )
    current = inst.releases / "current"
    tmp = inst.releases / ".current.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(version)
    os.replace(tmp, current)
    inst.launcher.parent.mkdir(parents=True, exist_ok=True)
    inst.launcher.write_text(LAUNCHER.format(name=inst.name, home=inst.home))
    inst.launcher.chmod(0o755)


def current_version(inst: Instance) -> str | None:
    current = inst.releases / "current"
    return os.readlink(current) if current.is_symlink() else None
