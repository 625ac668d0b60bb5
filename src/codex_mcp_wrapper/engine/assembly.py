"""The run's assembly: everything a run of a mission needs besides its tasks, built in one place
for local runs (``engine/lifecycle.py``) and Temporal hosts (``temporal/host.py``) alike.

* ``run_redactor``: the run's one redactor (the wrapper's secret-looking environment, every
  value of a task's ``env``, secret-looking MCP server env values), made once per run (per
  process) and passed down to the recorder, the reports, the observers, the hooks, the
  approval chain and the tools.
* ``assemble_run``: the hooks (the mission's and the caller's Python hooks), the approval chain
  (``engine/approval_chain.py``: rules, approval hooks, the rules' default, the caller's policy;
  contained for a client without sandbox escape; shown redacted to whoever decides), the
  orchestrator's tools, and the ``RunContext`` a backend runs the tasks with.

An import-linter contract keeps approval chains built here only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codex_mcp_wrapper.engine.approval_chain import contained, rule_approvals
from codex_mcp_wrapper.engine.approval_policies import fixed, redacting
from codex_mcp_wrapper.engine.events import Event
from codex_mcp_wrapper.engine.hooks import HookRunner, PythonHook
from codex_mcp_wrapper.engine.redaction import Redactor
from codex_mcp_wrapper.engine.seams import ApprovalHandler, RunContext
from codex_mcp_wrapper.engine.tools import PythonTool, tool_handler
from codex_mcp_wrapper.missions.model import Mission, defined_servers
from codex_mcp_wrapper.settings import Settings


def run_redactor(mission: Mission) -> Redactor:
    """The redactor for a run of ``mission``: secret-looking variables of the wrapper's own
    environment, every value of a task's ``env``, secret-looking MCP server env values."""
    redactor = Redactor.from_environment()
    for env in [mission.defaults.env or {}, *(t.env or {} for t in mission.tasks)]:
        redactor.add_env(env, all_values=True)
    for settings in [mission.defaults, *mission.tasks]:
        for server in defined_servers(settings).values():  # often paths: only secret-looking names
            redactor.add_env(server.env)
    return redactor


@dataclass(frozen=True)
class RunWiring:
    """Where a run is and what it reports to: its id, folders, event sink and redactor."""

    run_id: str
    run_dir: Path
    workspace_root: Path
    publish: Callable[[Event], None]
    redactor: Redactor


@dataclass(frozen=True)
class Extras:
    """What the caller adds to the mission's own orchestration (none on a Temporal host)."""

    approvals: ApprovalHandler | None = None  # default: the settings' fixed policy
    hooks: Mapping[str, Sequence[PythonHook]] = field(default_factory=dict)
    tools: Sequence[PythonTool] = ()
    sandbox_escape: bool = True
    thread_workers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assembled:
    context: RunContext
    hooks: HookRunner


def assemble_run(
    mission: Mission, settings: Settings, wiring: RunWiring, workers: int, extras: Extras
) -> Assembled:
    """The run's hooks and the context its backend runs the tasks with."""
    redactor = wiring.redactor
    hooks = HookRunner(wiring.run_id, mission.hooks, extras.hooks, wiring.publish, redactor.data)
    chain = rule_approvals(
        mission, extras.approvals or fixed(settings.approvals), wiring.publish, hooks
    )
    if not extras.sandbox_escape:
        chain = contained(chain)
    context = RunContext(
        run_id=wiring.run_id,
        run_dir=wiring.run_dir,
        workspace_root=wiring.workspace_root,
        workers=workers,
        thread_workers=extras.thread_workers,
        approvals=redacting(chain, redactor.text),
        publish=wiring.publish,
        redact=redactor.text,
        tools=tool_handler(mission, {t.name: t for t in extras.tools}, redactor.text),
    )
    return Assembled(context, hooks)
