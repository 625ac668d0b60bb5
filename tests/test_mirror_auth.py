"""--mirror-auth never copies an older login over a worker's own (refreshed) one."""

from __future__ import annotations

import os
from pathlib import Path

from codex_mcp_wrapper.codex.home import mirror_auth


def test_a_worker_keeps_its_refreshed_login_and_takes_a_newer_one_of_yours(tmp_path: Path) -> None:
    yours, worker = tmp_path / "user", tmp_path / "worker"
    yours.mkdir()
    worker.mkdir()
    assert mirror_auth(yours, worker) is False  # nothing to copy
    (yours / "auth.json").write_text('{"tokens": "first login"}')
    os.utime(yours / "auth.json", (1_000, 1_000))
    assert mirror_auth(yours, worker) is True
    assert (worker / "auth.json").read_text() == '{"tokens": "first login"}'
    assert (worker / "auth.json").stat().st_mode & 0o777 == 0o600
    (worker / "auth.json").write_text('{"tokens": "refreshed by the worker"}')
    os.utime(worker / "auth.json", (2_000, 2_000))
    assert mirror_auth(yours, worker) is True  # a later start: the worker's newer copy stays
    assert (worker / "auth.json").read_text() == '{"tokens": "refreshed by the worker"}'
    (yours / "auth.json").write_text('{"tokens": "logged in again"}')
    os.utime(yours / "auth.json", (3_000, 3_000))
    assert mirror_auth(yours, worker) is True
    assert (worker / "auth.json").read_text() == '{"tokens": "logged in again"}'
