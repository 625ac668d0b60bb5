"""The house rules a linter does not check: no function of the package over 80 lines, no module
over 400 (ruff checks complexity, C901 at 15, and statements, PLR0915 at 60), and the error
tree drawn in errors.py and docs/architecture.md as the classes are."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from codex_mcp_wrapper import errors

SRC = Path(__file__).resolve().parents[1] / "src" / "codex_mcp_wrapper"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400


def test_no_function_is_over_80_lines() -> None:
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines})")
    assert not long, "split these by responsibility: " + ", ".join(long)


def test_no_module_is_over_400_lines() -> None:
    big = [
        f"{path.relative_to(SRC)} ({count})"
        for path in sorted(SRC.rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not big, "split these by responsibility: " + ", ".join(big)


def drawn_tree(text: str, known: set[str]) -> dict[str, str]:
    """{class: parent} as a box drawing of the exception tree (in errors.py's docstring and in
    docs/architecture.md) draws it."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = re.match(r"^([ │├└─]*)(\w+)\s", line.strip("\n") + " ")
        if not match or match.group(2) not in known:
            continue
        depth, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_error_tree_is_drawn_as_the_classes_are() -> None:
    classes = {
        name: obj.__mro__[1].__name__
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, errors.WrapperError) and name != "WrapperError"
    }
    doc = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    section = doc[doc.index("WrapperError\n├") :].split("```")[0]
    known = {*classes, "WrapperError"}
    assert drawn_tree(errors.__doc__ or "", known) == classes
    assert drawn_tree(section, known) == classes
