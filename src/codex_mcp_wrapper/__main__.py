from codex_mcp_wrapper.cli import main

main()
