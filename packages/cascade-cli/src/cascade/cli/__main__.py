"""``python -m cascade.cli``: the same as the ``cascade`` command."""

from ._main import main

main()
