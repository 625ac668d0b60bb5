"""The wrapper's exception tree.

Every error a user can cause is one of these, carries one sentence that says what
is wrong and what to do, and maps to an exit code at the CLI edge::

    WrapperError
    ├── InputError                  exit 2: the user's input is invalid
    │   ├── MissionError            a mission file (syntax, schema, cwd, dependencies)
    │   ├── ScriptError             a scripted-model script
    │   └── PolicyRefusal           an MCP client asked for what the server's owner did not allow
    ├── EnvironmentProblem          exit 3: the machine cannot run Codex
    │   ├── CodexNotFound           no Codex binary
    │   ├── StateDirError           state dir not writable, disk full
    │   ├── NoCredentials           Codex's own model provider has nothing to log in with
    │   └── WorkerStartError        a Codex worker did not come up
    ├── WorkerError                 a running worker failed (becomes a task status)
    │   ├── WorkerDied              the process exited
    │   ├── WorkerStalled           no event within the idle deadline
    │   └── ProtocolError           the worker answered something we cannot use
    ├── NotSteerable                exit 1: the task has no turn running to steer
    ├── NotCancellable              exit 1: the task (or run) has nothing running to cancel
    ├── PatchConflict               exit 1: a task's patch does not apply; nothing was changed
    ├── Interrupted                 exit 130: SIGTERM or Ctrl-C; a run's says how to finish it
    └── RunDetached                 not an error: the run goes on elsewhere (Temporal), unwatched

Lower-layer errors (OSError, JSON errors, pydantic errors) are translated into these at the
boundary where they happen, with ``raise ... from exc``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_TASKS_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130


class WrapperError(Exception):
    """Base class; ``str(err)`` is the one-sentence message shown to the user."""

    exit_code = EXIT_TASKS_FAILED


class InputError(WrapperError):
    exit_code = EXIT_INVALID_INPUT


class MissionError(InputError):
    pass


class ScriptError(InputError):
    pass


class PolicyRefusal(InputError):
    """What an MCP client of ``serve`` asked for is beyond the server's policy; the sentence
    names the rule and the owner's option that would allow it."""


class EnvironmentProblem(WrapperError):
    exit_code = EXIT_ENVIRONMENT


class CodexNotFound(EnvironmentProblem):
    pass


class StateDirError(EnvironmentProblem):
    pass


class NoCredentials(EnvironmentProblem):
    pass


class WorkerStartError(EnvironmentProblem):
    pass


class PatchConflict(WrapperError):
    """A task's patch (``runs apply``, a mission's ``apply: on_success``) does not apply
    cleanly to the workspace; the sentence names the files, and nothing was changed."""


class WorkerError(WrapperError):
    """A worker failed while running a turn; the runner turns it into a task status."""


class WorkerDied(WorkerError):
    pass


class WorkerStalled(WorkerError):
    pass


class ProtocolError(WorkerError):
    pass


class NotSteerable(WrapperError):
    """A steer (``Runs.steer``, ``codex-steer``) found no turn of the task running: it has not
    started, is between turns or has ended, or its run goes on nowhere this wrapper reaches."""


class NotCancellable(WrapperError):
    """A cancel (``Runs.cancel``, ``runs cancel``, the UI) found nothing of the task or run
    running: a task queued or done, or a run going on nowhere this wrapper reaches."""


class Interrupted(WrapperError):
    """SIGTERM or Ctrl-C stopped the command (after its clean-up); for a run, the message says
    how to finish it (its finished tasks are kept)."""

    exit_code = EXIT_INTERRUPTED


class RunDetached(WrapperError):
    """The run goes on without this process watching it (a Temporal workflow, after
    ``--detach``, Ctrl-C "stop watching", or a Temporal server that did not come back in
    time: ``lost`` says why, exit 3); nothing of its end is recorded here until ``resume``
    follows it again."""

    exit_code = EXIT_OK

    def __init__(self, run_id: str, interrupted: bool = False, lost: str | None = None) -> None:
        how = "stopped watching" if interrupted or lost else "detached from"
        why = f" ({lost})" if lost else ""
        super().__init__(
            f"{how} run {run_id}{why}, which goes on on the hosts; `codex-mcp-wrapper resume "
            f"{run_id} --temporal ...` follows it to its end and records it."
        )
        self.run_id = run_id
        self.interrupted = interrupted
        self.lost = lost
        if interrupted:
            self.exit_code = EXIT_INTERRUPTED
        elif lost:
            self.exit_code = EXIT_ENVIRONMENT
