"""The command line (`handbook`, `python -m cli`): commands and their rendering, at the top of the
layers; it may start the API (`serve`, `mcp`)."""
