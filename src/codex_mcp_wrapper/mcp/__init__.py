"""The MCP facade: tools (argument mapping and result shaping), resources, transports."""
