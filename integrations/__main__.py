"""``python -m interchange``: the command line, as the ``interchange`` script runs it."""

from interchange.cli import main

main()
