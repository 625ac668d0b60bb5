"""Reading files and YAML a user (or an MCP client) hands us: YAML 1.2 as people write it,
and bounds that make hostile input fail fast: regular files only (a FIFO would block,
``/dev/zero`` never ends), a size cap checked before reading, YAML aliases bounded by the size
of the data they expand to (an alias bomb is a few hundred bytes that expand to billions of
nodes), and nesting bounded.

Used by mission files (``missions/loading``), script files (``scripted/script``) and cassettes
(``cassettes/model``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError as YAMLError  # re-exported: what loaders catch
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from codex_mcp_wrapper.errors import InputError

# Nodes a YAML document may expand to, aliases counted each time they are used. A large real
# mission (1,000 tasks of ten fields) is ~30,000; an alias bomb of 9 levels of 9 is 387 million.
MAX_YAML_NODES = 500_000
# Levels of nesting of a mission or script. Real ones stay under 15 (an output_schema adds a
# few); the YAML and JSON parsers themselves recurse and give up near 300-1000 levels.
MAX_DEPTH = 100


def read_text_file(path: Path, what: str, limit: int, error: type[InputError]) -> str:
    """The UTF-8 text of ``path``, a regular file of at most ``limit`` bytes; ``error``
    (one sentence naming ``what``) otherwise. Never blocks on a FIFO, never reads past the
    limit, whatever the file claims."""
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise error(f"{path}: no such {what} file; check the path.") from exc
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror}).") from exc
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: not a regular file; give the path of a {what} file.")
    if info.st_size > limit:
        raise error(f"{path}: the {what} is {info.st_size} bytes, over the limit of {limit}.")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # swapped since the stat
                raise error(f"{path}: not a regular file; give the path of a {what} file.")
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror}).") from exc
    if len(raw) > limit:
        raise error(f"{path}: the {what} is over the limit of {limit} bytes.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: the {what} is not UTF-8 text ({exc.reason}).") from exc


class YamlTooLarge(YAMLError):
    """A document whose aliases expand past ``MAX_YAML_NODES`` (or refer to themselves)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = None


def bounded_yaml(text: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """The data of a YAML document, read as YAML 1.2 (an unquoted ``on``, ``yes`` or ``off``
    is a string, ``010`` is ten) by ruamel.yaml's safe loader; a duplicate key is an error.
    A document whose aliases expand past ``max_nodes`` nodes (counted on the composed node
    graph, before anything is built) or refer to themselves is refused. Raises ``YAMLError``
    (``YamlTooLarge`` among them) and ``RecursionError`` (nesting deeper than the parser
    handles): the caller words them with ``yaml_problem``."""
    loader = YAML(typ="safe", pure=True)
    node = loader.compose(text)
    if node is None:
        return None
    expanded_size(node, max_nodes)
    return loader.constructor.construct_document(node)


def yaml_problem(exc: YAMLError) -> str:
    """Where and what, in one line: `` at line L, column C: problem``."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = " ".join(str(getattr(exc, "problem", None) or "invalid syntax").split())
    return f"{where}: {problem}"


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def expanded_size(root: Node, limit: int) -> int:
    """How many nodes ``root`` stands for once every alias is expanded; ``YamlTooLarge`` past
    ``limit`` or on an alias inside its own anchor. Iterative (no recursion limit) and linear
    in the size of the document: each node's size is computed once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > limit:
                raise YamlTooLarge(
                    f"its aliases expand to over {limit} nodes; write the repeated parts out "
                    "or use fewer aliases"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlTooLarge("an alias refers to the node it is part of")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def check_depth(
    data: Any, source: str, error: type[InputError] = InputError, limit: int = MAX_DEPTH
) -> None:
    """``error`` when ``data`` (parsed YAML/JSON) nests deeper than ``limit``."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise error(f"{source}: nested too deeply (over {limit} levels).")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
