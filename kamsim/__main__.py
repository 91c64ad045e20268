"""``python -m kamsim``: the command line."""

from kamsim.cli.main import main

main()
