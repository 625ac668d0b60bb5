"""Writing missions: ``validate`` (everything ``run`` would refuse, without running),
``schema`` (the published JSON Schema) and ``scaffold`` (a starter mission that runs offline).
These commands are light: they load no Codex, no MCP and no terminal library."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from codex_mcp_wrapper.cli.options import parse_vars
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.missions.loading import load_mission
from codex_mcp_wrapper.missions.model import mission_json_schema
from codex_mcp_wrapper.missions.runnable import BROAD_FLAG, check_runnable
from codex_mcp_wrapper.settings import wrapper_program

SCAFFOLD = """\
# A starter mission: `codex-mcp-wrapper run {name}` runs it offline on the scripted model.
# Drop `provider: scripted` and the `script:` blocks to run the same tasks on a real model.
mission_id: starter
workspace_root: ./workspace
provider: scripted
defaults:
  sandbox: workspace-write
  timeout_sec: 300
tasks:
  - id: write-hello
    prompt: Create hello.txt containing a greeting.
    script:
      - shell: "echo 'hello from codex' > hello.txt"
      - say: "Created hello.txt"
    artifacts: ["hello.txt"]
  - id: read-back
    depends_on: [write-hello]
    sandbox: read-only
    prompt: Show me hello.txt.
    script:
      - shell: "cat hello.txt"
      - say: "hello.txt says: {{last_output}}"
"""


broad_workspace_option = click.option(
    BROAD_FLAG,
    "allow_broad_workspace",
    is_flag=True,
    help="Allow a workspace_root that is /, your home directory or a system directory "
    "(refused by default: Codex could change anything in it).",
)


@click.command()
@click.argument("mission_file", type=click.Path(path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Set ${K} in the mission.")
@click.option(
    "--pass-env", multiple=True, metavar="NAME", help="As `run --pass-env` would be given."
)
@broad_workspace_option
def validate(
    mission_file: Path,
    variables: tuple[str, ...],
    pass_env: tuple[str, ...],
    allow_broad_workspace: bool,
) -> None:
    """Check MISSION_FILE as `run` would, without running it (exit 0 or 2).

    The schema, and what the mission needs of this machine: its workspace, the programs of its
    MCP servers, hooks and tools."""
    mission = load_mission(mission_file, parse_vars(variables))
    check_runnable(mission, str(mission_file), allow_broad=allow_broad_workspace, pass_env=pass_env)
    click.echo(
        f"{mission_file}: valid mission '{mission.mission_id}' with {len(mission.tasks)} task(s)."
    )


@click.command()
def schema() -> None:
    """Print the mission JSON Schema."""
    click.echo(json.dumps(mission_json_schema(), indent=2))


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
def scaffold(path: Path) -> None:
    """Write a starter mission to PATH that runs offline as it is."""
    if path.exists():
        raise InputError(f"{path} exists already; choose a new path.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCAFFOLD.format(name=path), encoding="utf-8")
    click.echo(f"wrote {path}; run it with: {wrapper_program()} run {shlex.quote(str(path))}")


COMMANDS = (validate, schema, scaffold)
