"""Who is asking: the identity of an MCP client, and which runs it may see.

A run belongs to the identity that started it (``RunOptions.owner``); an identity sees its own
runs, and an admin identity sees every run. ``None`` for an identity is the server's owner
(the CLI, the Python API): full power. A run another identity cannot see is, to it, a run
that does not exist (the same sentence), so run ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """An MCP client as the server knows it: the name of the token it presented (HTTP), or
    ``stdio`` for the process that launched a stdio server."""

    name: str
    admin: bool = False

    def sees(self, owner: str | None) -> bool:
        return self.admin or owner == self.name


STDIO = Identity("stdio")
ANONYMOUS = Identity("anonymous")  # HTTP on loopback without any token: every client is this


def may_see(client: Identity | None, owner: str | None) -> bool:
    """Whether ``client`` (None: the server's owner) may see a run owned by ``owner``."""
    return client is None or client.sees(owner)
