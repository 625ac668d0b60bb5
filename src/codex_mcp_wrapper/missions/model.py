"""The mission contract: pydantic models (``extra="forbid"``) and the published JSON Schema.

A mission is validated once, at the edge (``loading.py``); everything inward gets typed objects.
Hyphenated keys of the original design (``base-instructions``) are accepted as aliases.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from codex_mcp_wrapper.missions.expect import Expect
from codex_mcp_wrapper.missions.paths import check_relative
from codex_mcp_wrapper.missions.review import Review
from codex_mcp_wrapper.missions.rules import ApprovalRules, DynamicTool, Hook

DEFAULT_TIMEOUT_SEC = 900.0
DEFAULT_IDLE_TIMEOUT_SEC = 300.0
DEFAULT_RETRIES = 1

Sandbox = Literal["read-only", "workspace-write", "danger-full-access"]
ApprovalPolicy = Literal["never", "on-request", "on-failure", "untrusted"]
Isolation = Literal["none", "worktree"]
PositiveSeconds = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]


def _artifact_glob(value: str) -> str:
    check_relative(value, "artifact")
    return value


ArtifactGlob = Annotated[str, Field(min_length=1), AfterValidator(_artifact_glob)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _accept_hyphens(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fields = cls.model_fields
            out = {}
            for key, value in data.items():
                alt = key.replace("-", "_") if isinstance(key, str) else key
                out[alt if alt in fields and key not in fields else key] = value
            return out
        return data


class McpServer(_Model):
    """An MCP server a task's Codex may use: a command (stdio) or a URL (streamable HTTP)."""

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    bearer_token_env_var: str | None = None
    default_tools_approval_mode: Literal["auto", "prompt", "writes", "approve"] = "approve"
    enabled_tools: list[str] | None = None
    disabled_tools: list[str] | None = None
    startup_timeout_sec: PositiveSeconds | None = None
    tool_timeout_sec: PositiveSeconds | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of 'command' or 'url'")
        if self.command is not None and not self.command.strip():
            raise ValueError("'command' is empty: give the program that starts the server")
        if self.url is not None and not self.url.strip():
            raise ValueError("'url' is empty: give the server's URL")
        return self

    def codex_config(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude_defaults=False)


class CustomProvider(_Model):
    """A Responses-compatible model provider."""

    base_url: str
    env_key: str | None = None
    name: str = "custom"
    model: str | None = None


ProviderChoice = Literal["codex", "scripted"] | CustomProvider
ServerName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class Budget(_Model):
    """What a task may spend: ``tokens`` (Codex's ``totalTokens``, summed over the task's turns
    and attempts) and ``turns`` (turns started, follow-ups and retries included)."""

    tokens: Annotated[int, Field(ge=1)] | None = None
    turns: Annotated[int, Field(ge=1, le=10_000)] | None = None


class MissionBudget(_Model):
    """What a whole run may spend: once its tasks have used ``tokens``, no new task starts."""

    tokens: Annotated[int, Field(ge=1)]


class TaskSettings(_Model):
    """Settings a task may give and ``defaults`` may give for all tasks."""

    cwd: str | None = None
    sandbox: Sandbox | None = None
    approval_policy: ApprovalPolicy | None = None
    model: str | None = None
    profile: str | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    env: dict[str, str] | None = None
    config: dict[str, Any] | None = None
    # Servers defined here (NAME: {command|url ...}), or the names of servers the MCP server's
    # owner defined (`serve --config`'s [mcp_servers] table): the only way a client of `serve`
    # gets a stdio server. Resolved into definitions before a run is planned.
    mcp_servers: dict[str, McpServer] | list[ServerName] | None = None
    output_schema: dict[str, Any] | None = None
    artifacts: list[ArtifactGlob] | None = None
    timeout_sec: PositiveSeconds | None = None
    idle_timeout_sec: PositiveSeconds | None = None
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    preferred_worker: str | None = None
    approvals: ApprovalRules | None = None  # rules answering Codex's approval requests
    tools: list[DynamicTool] | None = None  # the orchestrator's tools Codex may call
    # Whether Codex runs commands in login shells that source the user's profile (and
    # snapshots one per thread). Off by default: commands get the worker's environment as
    # it is, and a thread costs the same whatever the profile does (pyenv, nvm, conda).
    login_shell: bool | None = None
    # A task over its budget is interrupted and fails; each field of a task's budget replaces
    # the same field of ``defaults``' budget.
    budget: Budget | None = None
    # `worktree`: the task works in a git worktree of its own, made from the workspace as it
    # is (HEAD plus uncommitted changes); its change comes back as a patch (its result's diff).
    isolation: Isolation | None = None


class Task(TaskSettings):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] | None = None
    prompt: Annotated[str, Field(min_length=1)]
    depends_on: list[str] = Field(default_factory=list)
    follow_ups: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    script: list[Any] | dict[str, Any] | str | None = None
    expect: Expect | None = None
    # Start from a copy of that task's thread (Codex's thread/fork) instead of a new one: the
    # task runs after it, with its conversation; ``fork_turn`` keeps only its first N turns.
    fork_from: str | None = None
    fork_turn: Annotated[int, Field(ge=1)] | None = None
    # Codex's review mode instead of a prompt for the first turn (missions/review.py); the
    # prompt may then be left out, follow-ups go on in the thread.
    review: Review | None = None

    @model_validator(mode="before")
    @classmethod
    def _review_prompt(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("review") and not data.get("prompt"):
            with contextlib.suppress(ValueError):  # the review's own validation says what
                data = {**data, "prompt": Review.model_validate(data["review"]).describe()}
        return data


class Mission(_Model):
    mission_id: Annotated[str, Field(min_length=1, max_length=128)] = "mission"
    workspace_root: str = "."
    notes: str | None = None
    provider: ProviderChoice = "codex"
    defaults: TaskSettings = Field(default_factory=TaskSettings)
    approvals: ApprovalRules | None = None  # the mission's rules (tasks' and defaults' first)
    hooks: list[Hook] = Field(default_factory=list)  # commands run on run events
    budget: MissionBudget | None = None  # tokens the whole run may use before no task starts
    # `on_success`: when the run ends, every ok worktree task's patch is applied to the
    # workspace, in task order, stopping at the first that does not apply.
    apply: Literal["none", "on_success"] = "none"
    tasks: Annotated[list[Task], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_graph(self) -> Mission:
        ids: list[str] = []
        for n, task in enumerate(self.tasks, start=1):
            if task.id is None:
                task.id = f"task-{n}"
            if task.id in ids:
                raise ValueError(f"task id '{task.id}' is used twice; ids must be unique")
            ids.append(task.id)
        known = set(ids)
        for task in self.tasks:
            _check_fork(task, known)
            for dep in task.depends_on:
                if dep not in known:
                    raise ValueError(
                        f"task '{task.id}' depends on '{dep}', which is not a task of this mission"
                    )
                if dep == task.id:
                    raise ValueError(f"task '{task.id}' depends on itself")
        cycle = find_cycle({t.id or "": prerequisites(t) for t in self.tasks})
        if cycle:
            shown = cycle if len(cycle) <= 10 else [*cycle[:5], "...", *cycle[-2:]]
            size = f" ({len(cycle) - 1} tasks)" if len(cycle) > 10 else ""
            raise ValueError("dependency cycle: " + " -> ".join(shown) + size)
        self._check_diff_expectations()
        for task in self.tasks:
            cwd = task.cwd or self.defaults.cwd or "."
            check_relative(cwd, f"task '{task.id}' cwd")
            names = [t.name for t in (task.tools or self.defaults.tools or [])]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"task '{task.id}' has two tools named '{twice[0]}'")
        return self

    def _check_diff_expectations(self) -> None:
        """``expect.diff`` is decided on a worktree task's change: other tasks have none."""
        for task in self.tasks:
            isolation = task.isolation or self.defaults.isolation or "none"
            if task.expect is not None and task.expect.diff is not None and isolation != "worktree":
                raise ValueError(
                    f"task '{task.id}' has expect.diff but runs without isolation: worktree, "
                    "so it has no change to check; add isolation: worktree"
                )


def _check_fork(task: Task, known: set[str]) -> None:
    if task.fork_turn is not None and task.fork_from is None:
        raise ValueError(f"task '{task.id}' gives fork_turn without fork_from")
    if task.fork_from is None:
        return
    if task.fork_from == task.id:
        raise ValueError(f"task '{task.id}' forks itself")
    if task.fork_from not in known:
        raise ValueError(
            f"task '{task.id}' forks '{task.fork_from}', which is not a task of this mission"
        )


def prerequisites(task: Task) -> list[str]:
    """The tasks that must end ok before ``task`` starts: its depends_on and the task it
    forks."""
    deps = list(task.depends_on)
    if task.fork_from is not None and task.fork_from not in deps:
        deps.append(task.fork_from)
    return deps


def defined_servers(settings: TaskSettings) -> dict[str, McpServer]:
    """The MCP servers ``settings`` defines (names of the owner's servers resolve elsewhere)."""
    servers = settings.mcp_servers
    return dict(servers) if isinstance(servers, dict) else {}


def server_names(mission: Mission) -> list[str]:
    """The names of owner-defined MCP servers the mission refers to, in order, once each."""
    names: list[str] = []
    for settings in [mission.defaults, *mission.tasks]:
        if isinstance(settings.mcp_servers, list):
            names.extend(n for n in settings.mcp_servers if n not in names)
    return names


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path (first node repeated at the end), or None.

    Iterative depth-first search: a chain of thousands of tasks must not hit the recursion limit.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if root in state:
            continue
        path: list[str] = [root]
        pending: list[list[str]] = [list(graph.get(root, []))]
        state[root] = 1
        while path:
            deps = pending[-1]
            if not deps:
                state[path.pop()] = 2
                pending.pop()
                continue
            dep = deps.pop(0)
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                state[dep] = 1
                path.append(dep)
                pending.append(list(graph.get(dep, [])))
    return None


def mission_json_schema() -> dict[str, Any]:
    schema = Mission.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "codex-mcp-wrapper mission"
    return schema
