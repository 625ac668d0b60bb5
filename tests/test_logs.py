"""Log lines carry the run, task and worker they are about."""

from __future__ import annotations

import logging

import pytest

from codex_mcp_wrapper.engine.approval_policies import fixed
from codex_mcp_wrapper.engine.seams import ApprovalRequest
from codex_mcp_wrapper.logs import bind

pytestmark = pytest.mark.anyio


def test_a_bound_logger_prefixes_its_context_and_passes_it_as_extra_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = bind(logging.getLogger("test.bound"), run="r1", worker="w2")
    with caplog.at_level(logging.INFO, logger="test.bound"):
        log.bind(task="build").info("started %s", "now")
    (record,) = caplog.records
    assert record.getMessage() == "[run=r1 worker=w2 task=build] started now"
    assert (record.run, record.task, record.worker) == ("r1", "build", "w2")  # type: ignore[attr-defined]


async def test_an_approval_decision_is_logged_with_its_run_and_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = ApprovalRequest(
        kind="command",
        run_id="r9",
        task_id="deploy",
        method="item/commandExecution/requestApproval",
        params={},
        command="make deploy",
    )
    with caplog.at_level(logging.INFO, logger="codex_mcp_wrapper.approvals"):
        assert await fixed("decline")(request) == "decline"
    assert caplog.records[-1].getMessage() == (
        "[run=r9 task=deploy] run `make deploy` -> decline (policy)"
    )
