"""The command line: main (the outer edge), one module per command group, progress, doctor."""
