"""A small real MCP server (official ``mcp`` SDK, stdio) used by tests: read and grep files.

Each call is appended to the file named by $FS_SERVER_LOG so tests can see it happened.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mcp.server.mcpserver import MCPServer

ROOT = Path(os.environ.get("FS_SERVER_ROOT", ".")).resolve()
server = MCPServer("fs")


def _log(tool: str, arguments: dict[str, str]) -> None:
    log = os.environ.get("FS_SERVER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


@server.tool(description="Read a text file under the server's root.")
def read_file(path: str) -> str:
    _log("read_file", {"path": path})
    target = (ROOT / path).resolve()
    if not target.is_relative_to(ROOT):
        raise ValueError("path escapes the root")
    return target.read_text(encoding="utf-8")


@server.tool(description="List lines matching a regex in the files under the root.")
def grep(pattern: str) -> str:
    _log("grep", {"pattern": pattern})
    regex = re.compile(pattern)
    hits = []
    for path in sorted(ROOT.rglob("*")):
        if path.is_file():
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{n}:{line}")
    return "\n".join(hits) or "no match"


if __name__ == "__main__":
    server.run("stdio")
