"""`serve`'s trust boundary from its options: the client identities (bearer tokens) and the
``ClientPolicy`` (what clients may ask for). See docs/security.md."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from codex_mcp_wrapper.engine.access import Identity
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.missions.model import McpServer
from codex_mcp_wrapper.missions.policy import SAFE_SANDBOXES, ClientPolicy

TOKEN_ENV = "CODEX_MCP_WRAPPER_TOKEN"
# Set (to anything) to have the stdio server answer its handshake only once the MCP SDK is up
# (the recorded answers are compared against that: scripts/handshake_manifest.py).
NO_FAST_HANDSHAKE = "CODEX_MCP_WRAPPER_NO_FAST_HANDSHAKE"
MAX_TOKENS_FILE_BYTES = 1_000_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Pick = Callable[[str, Any], Any]


def access_options(command: Any) -> Any:
    """The options of ``serve`` that draw its trust boundary."""
    for option in reversed(
        [
            click.option(
                "--tokens-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Client identities, one per line: NAME TOKEN, or NAME TOKEN admin (an "
                "admin sees every client's runs); # starts a comment. Each client sees only "
                "its own runs and threads.",
            ),
            click.option(
                "--allow-workspace",
                "allow_workspace",
                multiple=True,
                type=click.Path(path_type=Path, file_okay=False),
                metavar="DIR",
                help="Another directory (with everything below it) clients' missions and "
                "calls may use, besides --workspace; repeatable.",
            ),
            click.option(
                "--allow-danger-full-access",
                is_flag=True,
                help="Let clients ask for sandbox danger-full-access and approve commands "
                "that ask to leave the sandbox (default: refused, and declined unasked).",
            ),
            click.option(
                "--allow-client-providers",
                is_flag=True,
                help="Let clients' missions name a model provider (a base_url); it gets no "
                "credential of this server's but a variable shared by --expose-var "
                "(default: the server's own provider only).",
            ),
            click.option(
                "--allow-client-config",
                is_flag=True,
                help="Let clients set any Codex config key (default: only keys about the "
                "model's reasoning and instructions; docs/security.md lists them).",
            ),
            click.option(
                "--expose-var",
                "expose_var",
                multiple=True,
                metavar="NAME",
                help="A variable of this server's environment clients' missions may use as "
                "${NAME}; repeatable (default: none, only the call's own vars).",
            ),
        ]
    ):
        command = option(command)
    return command


def client_policy(
    pick: Pick, workspace: Path, mission_commands: bool, servers: dict[str, McpServer]
) -> ClientPolicy:
    """The policy from the options and the config file (``pick(name, cli_value)``);
    ``workspace`` is the first root (--workspace, else the directory served from);
    ``servers`` the owner's MCP servers (``owner_servers``)."""
    roots = [workspace.resolve()]
    for given in _strings(pick("allow_workspace", ()), "allow_workspace"):
        root = Path(given).expanduser().resolve()
        if not root.is_dir():
            raise InputError(f"--allow-workspace {given}: not a directory; create it first.")
        roots.append(root)
    names = _strings(pick("expose_var", ()), "expose_var")
    for name in names:
        if not _VAR.match(name):
            raise InputError(f"--expose-var {name}: not a variable name.")
    sandboxes = set(SAFE_SANDBOXES)
    if pick("allow_danger_full_access", False):
        sandboxes.add("danger-full-access")
    return ClientPolicy(
        roots=tuple(dict.fromkeys(roots)),
        sandboxes=frozenset(sandboxes),
        client_providers=bool(pick("allow_client_providers", False)),
        exposed_vars=tuple(names),
        commands=mission_commands,
        client_config=bool(pick("allow_client_config", False)),
        mcp_servers=servers,
    )


def _strings(value: Any, key: str) -> list[str]:
    if isinstance(value, str | Path):
        return [str(value)]
    if isinstance(value, list | tuple) and all(isinstance(v, str | Path) for v in value):
        return [str(v) for v in value]
    raise InputError(f"{key} in the config file must be a list of strings.")


# -- identities ------------------------------------------------------------------------------
def identities(
    ctx: click.Context,
    tokens: Sequence[str],
    token_file: Path | None,
    tokens_file: Path | None,
    file_opts: dict[str, Any],
) -> dict[str, Identity]:
    """Every accepted bearer token and its identity: ``--token`` (repeatable, or
    $CODEX_MCP_WRAPPER_TOKEN) and ``--token-file`` give unnamed ones (``token-1``, ...),
    ``--tokens-file`` named ones. The command line wins over the config file."""
    explicit = {
        name
        for name in ("token", "token_file", "tokens_file")
        if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
    }
    if explicit:
        plain = list(tokens) + ([read_token_file(token_file)] if token_file else [])
        named = read_tokens_file(tokens_file) if tokens_file else {}
    else:
        value = file_opts.get("token")
        plain = [str(value)] if value else []
        if "token_file" in file_opts:
            plain.append(read_token_file(Path(str(file_opts["token_file"]))))
        named = (
            read_tokens_file(Path(str(file_opts["tokens_file"])))
            if "tokens_file" in file_opts
            else {}
        )
    found: dict[str, Identity] = {}
    for index, token in enumerate(plain, start=1):
        if token in found:
            raise InputError("the same bearer token is given twice; give each client its own.")
        found[token] = Identity(f"token-{index}")
    for token, who in named.items():
        if token in found:
            raise InputError(
                f"the token of {who.name} in the tokens file is also given as --token; "
                "give each client its own."
            )
        found[token] = who
    return found


def read_token_file(path: Path) -> str:
    """The first line of ``path``, stripped; a missing, unreadable or empty file is an error."""
    try:
        with path.open(encoding="utf-8") as fh:
            token = fh.readline().strip()
    except FileNotFoundError as exc:
        raise InputError(f"token file {path}: no such file.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"token file {path}: cannot read it ({reason}).") from exc
    if not token:
        raise InputError(f"token file {path}: its first line is empty; put the token there.")
    return token


def read_tokens_file(path: Path) -> dict[str, Identity]:
    """``NAME TOKEN [admin]`` per line (``#`` comments, blank lines ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"tokens file {path}: no such file.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"tokens file {path}: cannot read it ({exc}).") from exc
    found: dict[str, Identity] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"tokens file {path}, line {number}"
        if len(words) not in (2, 3) or (len(words) == 3 and words[2] != "admin"):
            raise InputError(f"{where}: write NAME TOKEN, or NAME TOKEN admin.")
        name, token = words[0], words[1]
        if not _NAME.match(name):
            raise InputError(f"{where}: '{name}' is not a name (letters, digits, . _ @ -).")
        if any(who.name == name for who in found.values()):
            raise InputError(f"{where}: the name {name} is used twice.")
        if token in found:
            raise InputError(f"{where}: this token is already {found[token].name}'s.")
        found[token] = Identity(name, admin=len(words) == 3)
    if not found:
        raise InputError(f"tokens file {path}: no tokens in it; write NAME TOKEN per line.")
    return found


def owner_servers(value: Any, folder: Path | None) -> dict[str, McpServer]:
    """The config file's ``[mcp_servers]`` table (validated as it was read); a stdio server
    runs in the config file's ``folder`` unless it gives a ``cwd`` (relative: from there)."""
    servers: dict[str, McpServer] = {}
    for name, spec in (value or {}).items():
        server = McpServer.model_validate(spec)
        if server.command is not None and folder is not None:
            server.cwd = str((folder / (server.cwd or ".")).resolve())
        servers[name] = server
    return servers
