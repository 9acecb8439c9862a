"""Local Lambda sandbox: Runtime, Extensions, Telemetry and Invoke APIs with Lambda's semantics."""

from emulator.config import ConfigError, FunctionConfig
from emulator.emulator import Emulator, InvokeResult
from emulator.metrics import MetricStreamConfig

__all__ = ["ConfigError", "Emulator", "FunctionConfig", "InvokeResult", "MetricStreamConfig"]
