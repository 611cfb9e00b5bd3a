"""The `cascade` commands; `cascade.cli._registry` lists them, each imported when it is run.

A command without helpers of its own is one module (`acl`, `session`, `status`, `steer`,
`tasks`, `token`); one with helpers is a folder of its own (`cancel/`: the command in
``_command.py``, its helpers beside it). What several commands share is in
:mod:`cascade.cli.plumbing` (options, context, running and failing) and
:mod:`cascade.cli.rendering` (what the terminal shows).
"""
