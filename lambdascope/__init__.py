"""lambdascope: observability and debugging for AWS Lambda.

The parts, from the top: the command line (:mod:`lambdascope.cli`), the terminal UI
(:mod:`lambdascope.tui`), the detectors (:mod:`lambdascope.analyzers`) and the read interface
they all query through (:mod:`lambdascope.query`). Beside them: the collector that ingests and
stores (:mod:`lambdascope.collector`), the Lambda extension (:mod:`lambdascope.extension`) and
the local Lambda sandbox (:mod:`lambdascope.emulator`). Importing this package imports none of
them.
"""

__version__ = "0.1.0"
