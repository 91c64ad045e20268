"""The command line: parses arguments and calls the library. Nothing imports it."""

from __future__ import annotations

from kamsim import _submodules_of

# every module of this package as an attribute after a bare `import kamsim`, imported on use
__getattr__ = _submodules_of(__name__)
