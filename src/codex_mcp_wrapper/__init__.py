"""codex-mcp-wrapper: drive the OpenAI Codex CLI headlessly and reliably."""

__version__ = "0.1.0"
