"""Reading files and YAML a user (or an MCP client) hands us: YAML 1.2 as people write it,
and bounds that make hostile input fail fast: regular files only (a FIFO would block,
``/dev/zero`` never ends), a size cap checked before reading, YAML aliases bounded by the size
of the data they expand to (an alias bomb is a few hundred bytes that expand to billions of
nodes), and nesting bounded.

Used by mission files (``missions/loading``), script files (``scripted/script``) and cassettes
(``cassettes/model``)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError as YAMLError  # re-exported: what loaders catch
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scanner import Scanner

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


class YamlTooDeep(YAMLError):
    """Flow collections (``[[[...`` or ``{a: {b: ...``) nested deeper than ``MAX_DEPTH``."""

    def __init__(self, mark: Any) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")
        self.problem = f"nested deeper than {MAX_DEPTH} levels"
        self.problem_mark = mark


class _DepthBoundedScanner(Scanner):
    """ruamel's scanner, refusing flow nesting past ``MAX_DEPTH`` as it reads it: its work per
    token grows with the depth, so ``[[[[...`` thousands deep cost seconds before the composer's
    recursion gave up."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        if len(self.flow_context) >= MAX_DEPTH:
            raise YamlTooDeep(self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)


def bounded_yaml(text: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """The data of a YAML document, read as YAML 1.2 (an unquoted ``on``, ``yes`` or ``off``
    is a string, ``010`` is ten) by ruamel.yaml's safe loader; a duplicate key is an error.
    A document whose aliases expand past ``max_nodes`` nodes (counted on the composed node
    graph, before anything is built) or refer to themselves is refused, and so are flow
    collections nested past ``MAX_DEPTH``. Raises ``YAMLError`` (``YamlTooLarge``,
    ``YamlTooDeep`` and ``YamlValueError`` among them) and ``RecursionError`` (block nesting
    deeper than the parser handles): ``parse_document`` words them."""
    loader = YAML(typ="safe", pure=True)
    loader.Scanner = _DepthBoundedScanner
    node = loader.compose(text)
    if node is None:
        return None
    expanded_size(node, max_nodes)
    try:
        return loader.constructor.construct_document(node)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        # A scalar its type cannot hold: an unquoted 2001-13-45 (a date), !!bool maybe,
        # a number of thousands of digits (int() refuses them).
        raise YamlValueError(_unreadable(exc)) from exc


def _unreadable(exc: Exception) -> str:
    if "integer string conversion" in str(exc):
        return "a number has more digits than can be read (over 4300); quote it to keep it as text"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"a value cannot be read as its type ({detail}); quote it to keep it as text"


class YamlValueError(YAMLError):
    """A scalar that parses but cannot be built into its type (a date out of range...)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = None


def parse_document(
    text: str, source: str, what: str, error: type[InputError], *, json_syntax: bool = False
) -> Any:
    """The data of a YAML document (JSON with ``json_syntax``) read from ``source``, its
    nesting bounded; ``error`` in one sentence for anything else: bad syntax, aliases past the
    bound, nesting deeper than ``MAX_DEPTH``, a value its type cannot hold. The one place the
    loaders (missions, scripts, cassettes) turn parser errors into theirs."""
    try:
        data = json.loads(text) if json_syntax else bounded_yaml(text)
    except (RecursionError, YamlTooDeep) as exc:
        raise error(
            f"{source}: the {what} is nested too deeply (over {MAX_DEPTH} levels)."
        ) from exc
    except json.JSONDecodeError as exc:
        raise error(
            f"{source}: JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    except ValueError as exc:  # JSON: a number of thousands of digits
        raise error(f"{source}: {_unreadable(exc)}.") from exc
    except YAMLError as exc:
        raise error(f"{source}: YAML syntax error{yaml_problem(exc)}.") from exc
    check_depth(data, source, error)
    return data


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
