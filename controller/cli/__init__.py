"""The `boilerctl` command."""
