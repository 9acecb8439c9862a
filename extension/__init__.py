"""The lambdascope Lambda extension: a standard-library-only agent that runs in every sandbox."""

__version__ = "0.1.0"
