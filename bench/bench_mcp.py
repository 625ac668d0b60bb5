"""Benchmark: the latency of one MCP `codex` tool call, side by side in one run.

Sequential one-message `codex` calls through `codex-mcp-wrapper serve --scripted` (stdio, the
official `mcp` client), against the same one-message turn on an already running bare
`codex app-server` (thread/start + turn/start: the floor), and, when given `--old-codex BIN`
(the removed `codex mcp-server`, npm `@openai/codex@0.153.4`), its own `codex` tool on the same
scripted model. Prints the median and the ratios.

    python bench/bench_mcp.py [--calls 20] [--old-codex PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_pool import start_app_server, stop_app_server  # type: ignore[import-not-found]
from mcp import Client, StdioServerParameters

from codex_mcp_wrapper.codex.home import CodexHomeSpec, scripted_provider, write_codex_home
from codex_mcp_wrapper.scripted import ScriptedModel
from codex_mcp_wrapper.settings import Settings, find_codex_bin


async def wrapper_calls(calls: int, codex: str, root: Path) -> list[float]:
    argv = [sys.executable, "-m", "codex_mcp_wrapper", "--state-dir", str(root / "state")]
    argv += ["--codex-bin", codex, "serve", "--scripted", "--workspace", str(root)]
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
    times = []
    async with Client(params) as client:
        for n in range(calls):
            started = time.perf_counter()
            result = await client.call_tool("codex", {"prompt": f"call {n}"})
            times.append(time.perf_counter() - started)
            assert not result.is_error, result
    return times


async def old_server_calls(calls: int, old_codex: str, root: Path) -> list[float]:
    model = ScriptedModel()
    async with model.serve() as url:
        home = root / "old-home"
        write_codex_home(home, CodexHomeSpec(scripted_provider(url), trusted_projects=[root]))
        env = {**Settings().worker_base_env(), "CODEX_HOME": str(home)}
        params = StdioServerParameters(command=old_codex, args=["mcp-server"], env=env)
        times = []
        async with Client(params, mode="legacy") as client:
            for n in range(calls):
                started = time.perf_counter()
                result = await client.call_tool("codex", {"prompt": f"call {n}", "cwd": str(root)})
                times.append(time.perf_counter() - started)
                assert not result.is_error, result
        return times


async def direct_turns(calls: int, codex: str, root: Path) -> list[float]:
    model = ScriptedModel()
    async with model.serve() as url:
        client = await start_app_server(codex, root / "direct-home", url, root)
        times = []
        for n in range(calls):
            started = time.perf_counter()
            status = await client.turn(str(root), f"call {n}")
            times.append(time.perf_counter() - started)
            assert status == "completed", status
        await stop_app_server(client)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--old-codex", help="The codex binary of @openai/codex@0.153.4.")
    args = parser.parse_args()
    codex, _ = find_codex_bin(os.environ.get("CODEX_BIN"))
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cmw-bench-") as tmp:
        root = Path(tmp)
        runs = [("direct app-server turn", direct_turns, codex)]
        runs.append(("wrapper serve codex call", wrapper_calls, codex))
        if args.old_codex:
            runs.append(("old codex mcp-server call", old_server_calls, args.old_codex))
        for name, measure, binary in runs:
            times = asyncio.run(measure(args.calls, binary, root))
            medians[name] = statistics.median(times) * 1000
            print(f"{name:>26}: median {medians[name]:7.1f} ms over {args.calls}", flush=True)
    floor = medians["direct app-server turn"]
    wrapper = medians["wrapper serve codex call"]
    print(f"wrapper/direct = {wrapper / floor:.2f}")
    if "old codex mcp-server call" in medians:
        print(f"wrapper/old mcp-server = {wrapper / medians['old codex mcp-server call']:.2f}")


if __name__ == "__main__":
    main()
