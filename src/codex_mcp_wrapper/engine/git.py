"""The git commands of worktree tasks: a snapshot of the workspace, worktrees, diffs, patches.

Git is run directly (an asyncio subprocess), not through ``process.spawn``: each command is
short, starts nothing that outlives it, and the supervisor would add ~30 ms to every one.
Every command is bounded by ``GIT_TIMEOUT``; a failure is a ``GitError`` carrying one
sentence, which the caller turns into a task's outcome or a command's error.
Nothing here touches the user's index, branch or working tree, except ``apply_patch``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# A git command on a large repository (checking out a worktree, hashing a big tree) may take a
# while; past this it is killed and the task fails with the command named.
GIT_TIMEOUT = 300.0
BYTES = "surrogateescape"  # patches hold any bytes; written back as they came
IDENTITY = {  # who the wrapper's own commits (snapshots, dependencies applied) are by
    "GIT_AUTHOR_NAME": "codex-mcp-wrapper",
    "GIT_AUTHOR_EMAIL": "codex-mcp-wrapper@localhost",
    "GIT_COMMITTER_NAME": "codex-mcp-wrapper",
    "GIT_COMMITTER_EMAIL": "codex-mcp-wrapper@localhost",
}
# No user hook runs for the wrapper's own commands (post-checkout on `worktree add`, ...).
QUIET = ("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false")
_NOT_APPLYING = re.compile(
    r"^error: (?:patch failed: )?(.+?)(?::\d+)?(?:: (?:patch does not apply|already exists"
    r" in (?:working directory|index)|does not exist in (?:working directory|index)"
    r"|does not match index))?$"
)


class GitError(Exception):
    """A git command failed; ``str()`` is one sentence saying which and why."""


@dataclass(frozen=True)
class GitResult:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


async def git(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = GIT_TIMEOUT,
) -> GitResult:
    """Run ``git ARGS`` in ``cwd``; with ``check``, a failure raises ``GitError``."""
    full_env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *QUIET,
            *args,
            cwd=str(cwd),
            env=full_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise GitError(f"cannot run git ({exc.strerror}); install git.") from exc
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except BaseException:  # a timeout or a cancellation: the command dies with it
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    result = GitResult(proc.returncode or 0, out.decode(errors=BYTES), err.decode(errors="replace"))
    if check and not result.ok:
        why = (result.err.strip().splitlines() or ["no message"])[-1]
        raise GitError(f"`git {' '.join(args[:2])}` failed in {cwd}: {why}")
    return result


async def snapshot(
    workspace: Path, scratch: Path, exclude: Sequence[Path] = ()
) -> tuple[Path, str]:
    """The top of the workspace's work tree and a commit of it as it is now: HEAD plus every
    uncommitted change, staged or not, and untracked files (ignored ones left out). Made with a
    copy of the user's index, so their index, branch and files are untouched; ``exclude``:
    directories inside the work tree left out (the state dir, when it is there)."""
    top = Path((await git("rev-parse", "--show-toplevel", cwd=workspace)).out.strip()).resolve()
    head = await git("rev-parse", "--verify", "-q", "HEAD^{commit}", cwd=top, check=False)
    user_index = await git("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=top)
    scratch.mkdir(parents=True, exist_ok=True)
    index = scratch / "snapshot.index"
    source = Path(user_index.out.strip())
    if source.is_file():
        shutil.copyfile(source, index)  # its stat cache spares hashing unchanged files
    env = {"GIT_INDEX_FILE": str(index)}
    skip = [f":(exclude){p.resolve().relative_to(top)}" for p in exclude if _under(p, top)]
    try:
        await git("add", "-A", "--", ".", *skip, cwd=top, env=env)
        tree = (await git("write-tree", cwd=top, env=env)).out.strip()
    finally:
        index.unlink(missing_ok=True)
    parents = ["-p", head.out.strip()] if head.ok else []
    message = "codex-mcp-wrapper: the workspace at the start of the run"
    commit = await git("commit-tree", tree, *parents, "-m", message, cwd=top, env=IDENTITY)
    return top, commit.out.strip()


def _under(path: Path, top: Path) -> bool:
    try:
        path.resolve().relative_to(top)
    except ValueError:
        return False
    return True


async def add_worktree(top: Path, path: Path, branch: str, commit: str) -> None:
    """A worktree at ``path`` on a new branch ``branch`` (reset if it was left behind) at
    ``commit``."""
    await git("worktree", "prune", cwd=top)
    path.parent.mkdir(parents=True, exist_ok=True)
    await git("worktree", "add", "-q", "-B", branch, str(path), commit, cwd=top)


async def remove_worktree(top: Path, path: Path, branch: str) -> None:
    """Remove the worktree and its branch; whatever is already gone is fine."""
    await git("worktree", "remove", "--force", "--force", str(path), cwd=top, check=False)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    await git("worktree", "prune", cwd=top, check=False)
    await git("branch", "-D", branch, cwd=top, check=False)


def conflicting_files(stderr: str) -> list[str]:
    """The files `git apply` says a patch does not apply to, once each, in order."""
    files: list[str] = []
    for line in stderr.splitlines():
        match = _NOT_APPLYING.match(line.strip())
        if match and match.group(1) not in files and not match.group(1).startswith("corrupt"):
            files.append(match.group(1))
    return files


async def apply_patch(cwd: Path, patch: Path, *, index: bool = False) -> list[str]:
    """Apply ``patch`` in ``cwd`` (paths relative to it), all or nothing; the files it does not
    apply to (nothing is changed then), or [] when it applied."""
    args = ["apply", "--binary", "--whitespace=nowarn", *(["--index"] if index else [])]
    # In a folder of the work tree git reads a patch's paths from the top, and ignores, without
    # a word, those outside the folder: the folder is named as the patch's root.
    prefix = (await git("rev-parse", "--show-prefix", cwd=cwd)).out.strip()
    if prefix:
        args.append(f"--directory={prefix}")
    check = await git(*args, "--check", str(patch), cwd=cwd, check=False)
    if not check.ok:
        found = [f.removeprefix(prefix) for f in conflicting_files(check.err)]
        return found or [check.err.strip().splitlines()[-1]]
    await git(*args, str(patch), cwd=cwd)
    return []


async def commit_all(cwd: Path, message: str) -> None:
    """Commit everything in the worktree at ``cwd`` (the wrapper's own commit)."""
    await git("add", "-A", cwd=cwd)
    await git("commit", "-q", "--no-verify", "--allow-empty", "-m", message, cwd=cwd, env=IDENTITY)


@dataclass(frozen=True)
class Change:
    files: list[str]
    insertions: int
    deletions: int
    patch: str  # the patch text ("" when nothing changed)


async def change(cwd: Path, start: str = "HEAD") -> Change:
    """What changed in the worktree since the commit ``start`` (commits made in it since
    included), limited to ``cwd`` (the workspace inside it), paths relative to ``cwd``; new
    files count, ignored ones do not."""
    await git("add", "-A", cwd=cwd)
    common = ("diff", "--cached", "--no-renames", "--relative", start)
    stat = await git(*common, "--numstat", cwd=cwd)
    files: list[str] = []
    insertions = deletions = 0
    for line in stat.out.splitlines():
        added, removed, name = line.split("\t", 2)
        files.append(name)
        insertions += int(added) if added.isdigit() else 0
        deletions += int(removed) if removed.isdigit() else 0
    patch = (await git(*common, "--binary", cwd=cwd)).out if files else ""
    return Change(files, insertions, deletions, patch)
