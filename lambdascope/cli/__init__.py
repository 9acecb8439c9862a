"""The ``lambdascope`` command: the top layer, the only one that wires every part together."""

from lambdascope.cli.main import main

__all__ = ["main"]
