"""Local Lambda sandbox: Runtime, Extensions, Telemetry and Invoke APIs with Lambda's semantics."""

from lambdascope.emulator.config import ConfigError, FunctionConfig
from lambdascope.emulator.emulator import Emulator
from lambdascope.emulator.invoke_result import InvokeResult
from lambdascope.emulator.metrics import MetricStreamConfig

__all__ = ["ConfigError", "Emulator", "FunctionConfig", "InvokeResult", "MetricStreamConfig"]
