"""The local web UI (``codex-mcp-wrapper ui``): pages over the state dir, server-rendered from
Jinja2 templates, every read and action through the application API ``Runs``."""
