"""lambdascope: observability and debugging for AWS Lambda.

This package holds the command line (:mod:`lambdascope.cli`), the one read interface shared by
the analyzers and the TUI (:mod:`lambdascope.query`) and the demo that wires every part together.
"""

__version__ = "0.1.0"
