"""The local API the daemon serves to `boilerctl`: models, operations, server, client."""
