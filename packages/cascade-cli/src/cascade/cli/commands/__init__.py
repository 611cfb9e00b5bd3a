"""The `cascade` commands, one module per command or group; `cascade.cli._app` registers them.

Each module holds its typer command function(s) and nothing else of substance: what they
share is in the modules of :mod:`cascade.cli` below them.
"""
