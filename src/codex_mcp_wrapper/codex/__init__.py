"""The only code that knows Codex: app-server processes, JSON-RPC, CODEX_HOME, workers, the
pool, approvals and evidence in Codex wire formats, and ``LocalBackend``."""
