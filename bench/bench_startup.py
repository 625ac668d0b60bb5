"""Benchmark: start-up, side by side in one run (medians of whole processes).

- light commands: `--version`, `--help`, `validate examples/hello.yaml`, against `python -c
  pass` (the interpreter's own start);
- the stdio MCP server ready (spawn to `tools/list` answered): `serve` with its fast
  handshake, `serve` answering only once the MCP SDK is up (CODEX_MCP_WRAPPER_NO_FAST_HANDSHAKE),
  and, with `--old-codex BIN`, the removed `codex mcp-server` (npm @openai/codex@0.153.4);
- a one-task `run --scripted` of an echo mission (the whole CLI process), against one bare
  turn: a `codex app-server` spawned, initialized, a thread started and its one-message turn
  completed on the scripted model.

    python bench/bench_startup.py [--repeat 9] [--old-codex PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_pool import start_app_server, stop_app_server  # type: ignore[import-not-found]

from codex_mcp_wrapper.codex.home import CodexHomeSpec, scripted_provider, write_codex_home
from codex_mcp_wrapper.scripted import ScriptedModel
from codex_mcp_wrapper.settings import Settings, find_codex_bin

REPO = Path(__file__).resolve().parents[1]
WRAPPER = [sys.executable, "-m", "codex_mcp_wrapper"]
HANDSHAKE = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
]


def whole(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, cwd=REPO, check=False)
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr.decode()[-500:]
    return took


def ready(argv: list[str], env: dict[str, str]) -> float:
    """Spawn to the answer of `tools/list`, the client sending as Codex does."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    for message in HANDSHAKE:
        proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()
    while json.loads(proc.stdout.readline() or b"{}").get("id") != 2:
        pass
    took = time.perf_counter() - started
    proc.stdin.close()
    proc.wait(60)
    return took


async def bare_turn(codex: str, root: Path, url: str) -> float:
    started = time.perf_counter()
    client = await start_app_server(codex, root / "bare-home", url, root)
    status = await client.turn(str(root), "hello")
    took = time.perf_counter() - started
    await stop_app_server(client)
    assert status == "completed", status
    return took


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--old-codex", help="The codex binary of @openai/codex@0.153.4.")
    args = parser.parse_args()
    codex, _ = find_codex_bin(os.environ.get("CODEX_BIN"))
    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cmw-bench-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "CODEX_MCP_WRAPPER_HOME": str(root / "state"), "CODEX_BIN": codex}
        sdk_env = {**env, "CODEX_MCP_WRAPPER_NO_FAST_HANDSHAKE": "1"}
        mission = root / "one.yaml"
        mission.write_text(f"workspace_root: {root}\ntasks: [{{prompt: hello}}]\n")
        measures = {
            "python -c pass": lambda: whole([sys.executable, "-c", "pass"]),
            "--version": lambda: whole([*WRAPPER, "--version"], env),
            "--help": lambda: whole([*WRAPPER, "--help"], env),
            "validate": lambda: whole([*WRAPPER, "validate", "examples/hello.yaml"], env),
            "serve ready": lambda: ready([*WRAPPER, "serve", "--scripted"], env),
            "serve ready, SDK only": lambda: ready([*WRAPPER, "serve", "--scripted"], sdk_env),
            "run one task": lambda: whole([*WRAPPER, "run", str(mission), "--scripted"], env),
        }
        if args.old_codex:
            old_env = {**Settings().worker_base_env(), "CODEX_HOME": str(root / "old-home")}
            write_codex_home(
                root / "old-home", CodexHomeSpec(scripted_provider("http://127.0.0.1:9/v1"))
            )
            measures["old codex mcp-server ready"] = lambda: ready(
                [args.old_codex, "mcp-server"], old_env
            )
        samples: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(args.repeat):  # interleaved, so drift hits every figure alike
            for name, measure in measures.items():
                samples[name].append(measure())
        samples["bare app-server turn"] = asyncio.run(bare_turns(codex, root, args.repeat))
        for name, times in samples.items():
            rows[name] = median_ms(times)
            print(f"{name:>28}: median {rows[name]:7.1f} ms over {len(times)}", flush=True)
    print(f"serve ready / SDK only = {rows['serve ready'] / rows['serve ready, SDK only']:.2f}")
    if "old codex mcp-server ready" in rows:
        ratio = rows["serve ready"] / rows["old codex mcp-server ready"]
        print(f"serve ready / old codex mcp-server = {ratio:.2f}")
    extra = rows["run one task"] - rows["bare app-server turn"]
    print(f"run one task - bare turn = {extra:.0f} ms")


async def bare_turns(codex: str, root: Path, repeat: int) -> list[float]:
    model = ScriptedModel()
    async with model.serve() as url:
        return [await bare_turn(codex, root, url) for _ in range(repeat)]


if __name__ == "__main__":
    main()
