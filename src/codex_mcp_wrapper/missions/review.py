"""Code review tasks (Codex's review mode): what a task's ``review`` asks for, the findings a
review returns as structured data, and ``expect.review``, the bound on them.

Codex's review prompt makes the model answer JSON (``findings`` with ``title``, ``body``,
``priority`` 0-3, ``confidence_score`` and ``code_location {absolute_file_path, line_range}``,
plus ``overall_correctness``, ``overall_explanation``). The app-server (0.163.0) reports that
answer as it streams (an ``agentMessage`` ``item/started`` in review mode), then only a rendered
text in its ``exitedReviewMode`` item (``- TITLE — FILE:START-END`` and the body, no priority).
``parse_review`` reads the JSON when it has it, else the rendered text (a ``[P1]`` in a title
gives the priority), else keeps the text with no findings.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Priority = Annotated[int, Field(ge=0, le=3)]


class Review(BaseModel):
    """What to review, in the task's cwd (a git checkout): ``target: uncommitted`` (staged,
    unstaged and untracked changes), ``base: BRANCH`` (the current branch against BRANCH) or
    ``commit: SHA`` (that commit's changes; ``title`` labels it)."""

    model_config = ConfigDict(extra="forbid")
    target: Literal["uncommitted"] | None = None
    base: Annotated[str, Field(min_length=1)] | None = None
    commit: Annotated[str, Field(min_length=1)] | None = None
    title: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Review:
        if sum(v is not None for v in (self.target, self.base, self.commit)) != 1:
            raise ValueError("give exactly one of target: uncommitted, base: BRANCH, commit: SHA")
        if self.title is not None and self.commit is None:
            raise ValueError("title labels a commit; give it with commit: SHA")
        return self

    def codex_target(self) -> dict[str, Any]:
        """The ``target`` of Codex's ``review/start``."""
        if self.base is not None:
            return {"type": "baseBranch", "branch": self.base}
        if self.commit is not None:
            return {"type": "commit", "sha": self.commit, "title": self.title}
        return {"type": "uncommittedChanges"}

    def describe(self) -> str:
        if self.base is not None:
            return f"Review the changes against {self.base}."
        if self.commit is not None:
            return f"Review commit {self.commit}."
        return "Review the uncommitted changes."


class Finding(BaseModel):
    title: str = ""
    body: str = ""
    file: str | None = None
    lines: tuple[int, int] | None = None  # first and last line
    priority: int | None = None  # 0 (most urgent) to 3
    confidence: float | None = None


class ReviewResult(BaseModel):
    findings: list[Finding] = Field(default_factory=list)
    overall_correctness: str | None = None
    overall_explanation: str | None = None
    text: str = ""  # the review as Codex returned it


def _finding(raw: dict[str, Any]) -> Finding:
    location = raw.get("code_location")
    location = location if isinstance(location, dict) else {}
    span = location.get("line_range")
    span = span if isinstance(span, dict) else {}
    start, end = span.get("start"), span.get("end")
    lines = (int(start), int(end if end is not None else start)) if start is not None else None
    return Finding(
        title=str(raw.get("title", "")),
        body=str(raw.get("body", "")),
        file=location.get("absolute_file_path"),
        lines=lines,
        priority=raw.get("priority"),
        confidence=raw.get("confidence_score"),
    )


_RENDERED = re.compile(
    r"^- (?P<title>.+?) \u2014 (?P<file>.+?):(?P<start>\d+)(?:-(?P<end>\d+))?\n"
    r"(?P<body>(?:  .*\n?)*)",
    re.MULTILINE,
)
_PRIORITY = re.compile(r"\[P([0-3])\]")


def _from_json(answer: str, text: str) -> ReviewResult | None:
    try:
        data = json.loads(answer)
        findings = [_finding(f) for f in data.get("findings") or [] if isinstance(f, dict)]
        return ReviewResult(
            findings=findings,
            overall_correctness=data.get("overall_correctness"),
            overall_explanation=data.get("overall_explanation"),
            text=text,
        )
    except (ValueError, TypeError, AttributeError, ValidationError):
        return None


def parse_review(text: str, answer: str | None = None) -> ReviewResult:
    """The structured review: from the model's JSON ``answer`` (or ``text``, when it is JSON),
    else from Codex's rendered ``text``."""
    for candidate in (answer, text):
        parsed = _from_json(candidate, text) if candidate else None
        if parsed is not None:
            return parsed
    findings = []
    for match in _RENDERED.finditer(text):
        start = int(match["start"])
        priority = _PRIORITY.search(match["title"])
        findings.append(
            Finding(
                title=match["title"],
                body="\n".join(line[2:] for line in match["body"].splitlines()).strip(),
                file=match["file"],
                lines=(start, int(match["end"] or start)),
                priority=int(priority[1]) if priority else None,
            )
        )
    explanation = text.split("\n\nReview comment", 1)[0].strip() if findings else None
    return ReviewResult(findings=findings, overall_explanation=explanation, text=text)


class ReviewCheck(BaseModel):
    """``expect.review``: bounds on a review task's findings."""

    model_config = ConfigDict(extra="forbid")
    forbid_priorities: list[Priority] = Field(
        default_factory=list, description="no finding may have one of these priorities"
    )
    max_findings: Annotated[int, Field(ge=0)] | None = None


def check_review(
    check: ReviewCheck, review: ReviewResult | None
) -> list[tuple[str, bool, str, str]]:
    """(name, ok, expected, observed) of each bound of ``check``."""
    findings = review.findings if review is not None else []
    results = []
    if check.forbid_priorities:
        bad = [f for f in findings if f.priority in check.forbid_priorities]
        shown = "; ".join(f"[P{f.priority}] {f.title}" for f in bad) or "none"
        expected = f"no finding at priority {', '.join(map(str, check.forbid_priorities))}"
        results.append(("review.forbid_priorities", not bad, expected, shown))
    if check.max_findings is not None:
        ok = len(findings) <= check.max_findings
        results.append(
            ("review.max_findings", ok, f"at most {check.max_findings}", str(len(findings)))
        )
    if review is None:
        results.append(("review", False, "a review from Codex", "none: the task ran no review"))
    return results
