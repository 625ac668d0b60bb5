"""The engine knows no Codex: the executor seam, the runner, events, results, the store,
reports, redaction, and ``runs.Runs``, the application API both facades call."""
