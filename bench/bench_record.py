"""Benchmark: what the recording proxy (`run --record`) adds to a model request, side by side.

An upstream Responses-style server streams EVENTS server-sent events PAUSE seconds apart; a
client posts N requests to it directly and N through the proxy, alternating, and measures the
time to the first event (a proxy that buffers shows the whole stream time here) and to the
last. Prints medians and the proxy's overhead per request in milliseconds.

    python bench/bench_record.py [--requests 50] [--events 5] [--pause 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from codex_mcp_wrapper.cassettes.proxy import RecordingProxy
from codex_mcp_wrapper.scripted.server import serve_app


def upstream_app(events: int, pause: float) -> Starlette:
    async def responses(request: Request) -> StreamingResponse:
        await request.body()

        async def stream() -> AsyncIterator[bytes]:
            for n in range(events):
                item = {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": f"part {n}"}],
                }
                event = {"type": "response.output_item.done", "output_index": n, "item": item}
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                await asyncio.sleep(pause)
            done = {"type": "response.completed", "response": {"id": "r"}}
            yield f"event: response.completed\ndata: {json.dumps(done)}\n\n".encode()

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/responses", responses, methods=["POST"])])


async def one(client: httpx.AsyncClient, url: str) -> tuple[float, float]:
    body = {
        "model": "m",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ],
    }
    started = time.perf_counter()
    first = 0.0
    async with client.stream(
        "POST", f"{url}/responses", json=body, headers={"thread-id": "bench"}
    ) as answer:
        async for _chunk in answer.aiter_raw():
            if not first:
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def main(requests: int, events: int, pause: float) -> None:
    async with serve_app(upstream_app(events, pause)) as upstream:
        proxy = RecordingProxy(upstream)
        async with proxy.serve() as proxied, httpx.AsyncClient(timeout=60) as client:
            await one(client, upstream)
            await one(client, proxied)
            direct: list[tuple[float, float]] = []
            through: list[tuple[float, float]] = []
            for _ in range(requests):
                direct.append(await one(client, upstream))
                through.append(await one(client, proxied))
        assert len(proxy.records) == requests + 1
    ms = lambda values: statistics.median(values) * 1000  # noqa: E731
    d_first, p_first = ms([d[0] for d in direct]), ms([p[0] for p in through])
    d_all, p_all = ms([d[1] for d in direct]), ms([p[1] for p in through])
    stream = events * pause * 1000
    print(f"{requests} requests, {events} events {pause * 1000:g} ms apart (~{stream:g} ms)")
    print(f"first event: direct {d_first:6.1f} ms, through the proxy {p_first:6.1f} ms")
    print(f"whole stream: direct {d_all:6.1f} ms, through the proxy {p_all:6.1f} ms")
    print(
        f"proxy overhead per request: first event +{p_first - d_first:.1f} ms, "
        f"whole stream +{p_all - d_all:.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.05)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.events, args.pause))
