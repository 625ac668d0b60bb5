"""Item 27.4 traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, a mission run through Temporal is
one trace holding the submitter's spans and the host's, received on a test's OTLP endpoint."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.missions import write_mission
from tests.helpers.otlp import otlp_receiver
from tests.helpers.temporal import temporal_rig

TRACE_TIMEOUT = 60  # spans are exported as they end; the host's come with its attempts


def test_a_temporal_run_is_one_trace_with_the_submitters_and_the_hosts_spans(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    with otlp_receiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        with temporal_rig(tmp_path / "rig", env) as rig:
            rig.start_host("A")
            tasks = [{"id": "t1", "prompt": "one"}, {"id": "t2", "prompt": "two"}]
            path = write_mission(tmp_path / "m.yaml", tmp_path / "ws", tasks, provider="scripted")
            submitted = run_cli(["run", str(path), "--json", *rig.flags()], env)
            assert submitted.returncode == 0, submitted.stderr
            assert json.loads(submitted.stdout)["tasks"][0]["status"] == "ok"
            # the mission's trace (the submitter's queries of its events are traces of their own)
            spans = receiver.wait_for_trace(
                {
                    ("codex-mcp-wrapper-submitter", "StartWorkflow:MissionWorkflow"),
                    ("codex-mcp-wrapper-host", "RunWorkflow:MissionWorkflow"),
                    ("codex-mcp-wrapper-host", "RunActivity:run_task"),
                },
                TRACE_TIMEOUT,
            )
    tasks_run = [s for s in spans if s.name == "RunActivity:run_task"]
    assert len(tasks_run) == 2, spans  # each task's attempt, in the mission's trace
    attempts = sorted(s.name for s in spans if s.service == "codex-mcp-wrapper-host")
    assert "attempt t1" in attempts and "attempt t2" in attempts, attempts


def test_codex_sends_its_own_telemetry_to_the_same_endpoint(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    with otlp_receiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        path = write_mission(
            tmp_path / "m.yaml",
            tmp_path / "ws",
            [{"id": "t1", "prompt": "one"}],
            provider="scripted",
        )
        done = run_cli(["run", str(path), "--json"], env)
        assert done.returncode == 0, done.stderr
        # Codex's spans (its app-server requests) and its log events, from its own config
        receiver.wait(
            lambda r: any(s.service == "codex-app-server" for s in r.spans),
            "span from Codex",
            TRACE_TIMEOUT,
        )
        receiver.wait(lambda r: "/v1/logs" in r.posts, "log export from Codex", TRACE_TIMEOUT)
