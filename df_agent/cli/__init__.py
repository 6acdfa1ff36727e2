"""The `df-agent` command line: a registry of subcommands whose modules load only when invoked."""
