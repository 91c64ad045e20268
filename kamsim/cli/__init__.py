"""The command line: parses arguments and calls the library. Nothing imports it."""
