"""The house rules a linter does not check: no function of the package over 80 lines, no module
over 400 (ruff checks complexity, C901 at 15, and statements, PLR0915 at 60)."""

from __future__ import annotations

import ast
from pathlib import Path

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
