from codex_mcp_wrapper.cli.main import main

main()
