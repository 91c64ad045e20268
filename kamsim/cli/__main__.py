"""``python -m kamsim.cli``: the command line."""

from kamsim.cli.main import main

main()
