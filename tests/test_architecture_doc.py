"""docs/architecture.md states facts about the code that a newcomer relies on: they are checked
here, so the doc cannot drift from the code it describes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "codex_mcp_wrapper"
DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _defined(path: Path) -> set[str]:
    """Top-level classes, functions and assignments of a module, and the methods of its
    classes (as ``Class.method`` and ``method``)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names |= {item.name, f"{node.name}.{item.name}"}
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _where_to_look() -> list[tuple[str, list[tuple[Path, list[str]]]]]:
    """Each row: the question, and each file named with the names given after it."""
    rows = []
    for line in _section("Where to look").splitlines():
        if not line.startswith("| ") or line.startswith(("| question", "|---")):
            continue
        question, answer = (cell.strip() for cell in line.strip("|").split("|", 1))
        files = []
        for match in re.finditer(r"`([\w/]+\.py)`(?: \(([^)]*)\))?", answer):
            names = re.findall(r"`([\w.]+)`", match.group(2) or "")
            files.append((PACKAGE / match.group(1), names))
        rows.append((question, files))
    return rows


def test_every_where_to_look_answer_is_one_or_two_files_that_define_what_it_names() -> None:
    rows = _where_to_look()
    assert len(rows) >= 6
    for question, files in rows:
        assert 1 <= len(files) <= 2, f"'{question}' should be answered by one or two files"
        for path, names in files:
            assert path.is_file(), f"'{question}': {path.relative_to(REPO)} does not exist"
            missing = [n for n in names if n not in _defined(path)]
            assert not missing, f"'{question}': {path.name} defines no {missing}"


def test_the_approval_chain_is_built_only_by_the_run_assembly() -> None:
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "approval_chain import" in path.read_text(encoding="utf-8")
    )
    assert importers == ["engine/assembly.py"]


def test_a_run_redactor_is_made_only_where_a_run_is_wired() -> None:
    makers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "run_redactor(" in path.read_text(encoding="utf-8")
    )
    # the assembly defines it; Runs makes one per run (shared with the engine), the engine
    # when called without one, a Temporal host for its share of a run
    assert makers == [
        "engine/assembly.py",
        "engine/lifecycle.py",
        "engine/runs.py",
        "temporal/host.py",
    ]


def test_the_except_exception_table_lists_every_broad_except() -> None:
    table = _section("Errors").split("### Every `except Exception`", 1)[1]
    listed = set(re.findall(r"^\| `([\w/]+\.py)`", table, flags=re.MULTILINE))
    found = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"except Exception( as \w+)?:", text):
            found.add(str(path.relative_to(PACKAGE)))
    assert found <= listed, f"broad excepts not in docs/architecture.md: {sorted(found - listed)}"
    assert listed <= found, (
        f"docs/architecture.md lists broad excepts gone: {sorted(listed - found)}"
    )
