"""``python -m cascade.cli``: the same as the ``cascade`` command."""

from ._app import main

main()
