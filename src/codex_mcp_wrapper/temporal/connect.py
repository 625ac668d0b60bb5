"""Connecting to Temporal the same way on every side: the pydantic data converter (the
engine's dataclasses hold pydantic models), one sentence when the server is not there, and
the workflow sandbox's pass-through modules."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from codex_mcp_wrapper.errors import EnvironmentProblem
from codex_mcp_wrapper.settings import TemporalSettings

# Third-party modules the engine imports that may not be re-imported in the sandbox
# (jsonschema -> attrs calls platform.* at import); they hold no workflow state.
PASSTHROUGH = (
    "jsonschema",
    "jsonschema_specifications",
    "referencing",
    "rpds",
    "attr",
    "attrs",
    "platformdirs",
    "yaml",
)


async def connect(target: TemporalSettings) -> Client:
    """A client of ``target``; raises ``EnvironmentProblem`` in one sentence when it is not
    reachable."""
    try:
        return await Client.connect(
            target.address, namespace=target.namespace, data_converter=pydantic_data_converter
        )
    except RuntimeError as exc:
        raise EnvironmentProblem(
            f"cannot reach the Temporal server at {target.address} ({_reason(exc)}); start it "
            "(`temporal server start-dev`, see docs/scale-out.md) or fix --temporal."
        ) from exc


def _reason(exc: RuntimeError) -> str:
    text = str(exc).removeprefix("Failed client connect: ")
    return text.splitlines()[0][:160] if text else type(exc).__name__


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )
