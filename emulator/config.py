"""Function configuration: the `FunctionConfig` the emulator runs, and its validation.

Limits follow Lambda's: memory 128-10,240 MB, timeout up to 900 s. Errors name the function and
the field so a user can fix the config without reading the emulator's code.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
MAX_TIMEOUT_S = 900.0
LOG_FORMATS = ("Text", "JSON")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
ARCHITECTURES = ("x86_64", "arm64")
# Lambda's rule for function names (without the ARN forms, which the Invoke API resolves).
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ConfigError(ValueError):
    """A function configuration is invalid; the message names the function and the field."""

    def __init__(self, function_name: str, field_name: str, problem: str) -> None:
        self.function_name = function_name
        self.field_name = field_name
        self.problem = problem
        super().__init__(f"function {function_name!r}: field {field_name!r}: {problem}")


@dataclass(frozen=True)
class FunctionConfig:
    """One Lambda function as the emulator runs it.

    `layers` are folders laid out like Lambda layers: `python/` joins PYTHONPATH, and every
    executable file in `extensions/` is launched as an external extension.
    """

    name: str
    handler: str
    code_dir: Path
    memory_size_mb: int = 128
    timeout_s: float = 3.0
    layers: tuple[Path, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    # "Text" or "JSON"; empty: "JSON" for Lambda Managed Instances (their only format), else "Text".
    log_format: str = ""
    version: str = "$LATEST"
    region: str = "us-east-1"
    architecture: str = "x86_64"
    log_level: str | None = None
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0
    # Initialise one on-demand environment when the emulator starts, ahead of any request.
    proactive_init: bool = False
    # Lambda Managed Instances: environments initialised ahead, each serving up to
    # `max_concurrency` requests at once (PerExecutionEnvironmentMaxConcurrency; default 16 per
    # vCPU), between `min_execution_environments` and `max_execution_environments`
    # (FunctionScalingConfig; None: bounded by the account concurrency only).
    managed_instances: bool = False
    max_concurrency: int | None = None
    min_execution_environments: int = 1
    max_execution_environments: int | None = None

    def __post_init__(self) -> None:
        # Accept str paths and lists from callers; store the canonical types.
        object.__setattr__(self, "code_dir", Path(self.code_dir))
        object.__setattr__(self, "layers", tuple(Path(p) for p in self.layers))
        object.__setattr__(self, "environment", dict(self.environment))
        if self.log_format == "":
            object.__setattr__(self, "log_format", "JSON" if self.managed_instances else "Text")
        if self.managed_instances is True and self.max_concurrency is None:
            object.__setattr__(
                self, "max_concurrency", default_max_concurrency(self.memory_size_mb)
            )
        validate(self)

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.name}"


ACCOUNT_ID = "000000000000"
# Lambda Managed Instances: at least 2 GB per environment, 2 GB per vCPU by default, and the
# Python runtime's default PerExecutionEnvironmentMaxConcurrency of 16 requests per vCPU.
MANAGED_MIN_MEMORY_MB = 2048
MANAGED_MB_PER_VCPU = 2048
MANAGED_REQUESTS_PER_VCPU = 16
MANAGED_MAX_CONCURRENCY = 1024  # one runtime process each: a sanity bound, not Lambda's


def default_max_concurrency(memory_size_mb: int) -> int:
    """PerExecutionEnvironmentMaxConcurrency when not set: 16 per vCPU of the environment."""
    if isinstance(memory_size_mb, bool) or not isinstance(memory_size_mb, int):
        return MANAGED_REQUESTS_PER_VCPU
    return MANAGED_REQUESTS_PER_VCPU * max(1, memory_size_mb // MANAGED_MB_PER_VCPU)


def _whole(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def validate(fn: FunctionConfig) -> None:
    """Raise ConfigError for the first invalid field of `fn`."""
    name = fn.name if isinstance(fn.name, str) else repr(fn.name)
    if not isinstance(fn.name, str) or not _NAME_RE.match(fn.name):
        raise ConfigError(name, "name", "use 1-64 letters, digits, '-' or '_'")
    if not isinstance(fn.handler, str) or "." not in fn.handler.strip("."):
        raise ConfigError(name, "handler", f"{fn.handler!r} is not of the form 'module.function'")
    if not fn.code_dir.is_dir():
        raise ConfigError(name, "code_dir", f"{str(fn.code_dir)!r} is not a directory")
    if isinstance(fn.memory_size_mb, bool) or not isinstance(fn.memory_size_mb, int):
        raise ConfigError(name, "memory_size_mb", "must be a whole number of MB")
    if not MIN_MEMORY_MB <= fn.memory_size_mb <= MAX_MEMORY_MB:
        raise ConfigError(
            name,
            "memory_size_mb",
            f"{fn.memory_size_mb} is outside {MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB",
        )
    if isinstance(fn.timeout_s, bool) or not isinstance(fn.timeout_s, int | float):
        raise ConfigError(name, "timeout_s", "must be a number of seconds")
    if not 0 < fn.timeout_s <= MAX_TIMEOUT_S:
        raise ConfigError(name, "timeout_s", f"{fn.timeout_s} is outside (0, {MAX_TIMEOUT_S:g}] s")
    for layer in fn.layers:
        if layer.is_file() and layer.parent.name == "extensions":
            raise ConfigError(
                name,
                "layers",
                f"{str(layer)!r} is an extension executable: pass its layer folder "
                f"{str(layer.parent.parent)!r} instead",
            )
        if not layer.is_dir():
            raise ConfigError(name, "layers", f"{str(layer)!r} is not a directory")
    for key, value in fn.environment.items():
        if not isinstance(key, str) or not key or "=" in key or not isinstance(value, str):
            raise ConfigError(name, "environment", f"{key!r}: names and values must be strings")
    if fn.log_format not in LOG_FORMATS:
        raise ConfigError(name, "log_format", f"{fn.log_format!r} is not one of {LOG_FORMATS}")
    if fn.log_level is not None and fn.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(name, "log_level", f"{fn.log_level!r} is not one of {LOG_LEVELS}")
    if fn.architecture not in ARCHITECTURES:
        raise ConfigError(
            name, "architecture", f"{fn.architecture!r} is not one of {ARCHITECTURES}"
        )
    if fn.reserved_concurrency is not None and (
        isinstance(fn.reserved_concurrency, bool)
        or not isinstance(fn.reserved_concurrency, int)
        or fn.reserved_concurrency < 0
    ):
        raise ConfigError(name, "reserved_concurrency", "must be a whole number >= 0")
    pc = fn.provisioned_concurrency
    if isinstance(pc, bool) or not isinstance(pc, int) or pc < 0:
        raise ConfigError(name, "provisioned_concurrency", "must be a whole number >= 0")
    if not isinstance(fn.proactive_init, bool):
        raise ConfigError(name, "proactive_init", "must be true or false")
    _validate_managed(name, fn)
    if fn.reserved_concurrency is not None and pc > fn.reserved_concurrency:
        raise ConfigError(
            name,
            "provisioned_concurrency",
            f"{pc} is more than the reserved concurrency ({fn.reserved_concurrency})",
        )


def _validate_managed(name: str, fn: FunctionConfig) -> None:
    if not isinstance(fn.managed_instances, bool):
        raise ConfigError(name, "managed_instances", "must be true or false")
    if not fn.managed_instances:
        for field_name in ("max_concurrency", "max_execution_environments"):
            if getattr(fn, field_name) is not None:
                raise ConfigError(name, field_name, "applies only with managed_instances = true")
        if fn.min_execution_environments != 1:
            raise ConfigError(
                name, "min_execution_environments", "applies only with managed_instances = true"
            )
        return
    if fn.log_format != "JSON":
        raise ConfigError(
            name, "log_format", 'Lambda Managed Instances support only JSON: use "JSON" or omit it'
        )
    if fn.memory_size_mb < MANAGED_MIN_MEMORY_MB:
        raise ConfigError(
            name,
            "memory_size_mb",
            f"{fn.memory_size_mb} is below the {MANAGED_MIN_MEMORY_MB} MB Lambda Managed "
            "Instances need",
        )
    concurrency = fn.max_concurrency
    if (
        not isinstance(concurrency, int)
        or not _whole(concurrency, 1)
        or (concurrency > MANAGED_MAX_CONCURRENCY)
    ):
        raise ConfigError(
            name, "max_concurrency", f"must be a whole number 1-{MANAGED_MAX_CONCURRENCY}"
        )
    if not _whole(fn.min_execution_environments, 0):
        raise ConfigError(name, "min_execution_environments", "must be a whole number >= 0")
    most = fn.max_execution_environments
    if most is not None and (not _whole(most, 1) or most < fn.min_execution_environments):
        raise ConfigError(
            name,
            "max_execution_environments",
            f"must be a whole number >= 1 and >= min_execution_environments "
            f"({fn.min_execution_environments})",
        )
    if fn.provisioned_concurrency or fn.proactive_init:
        field_name = "provisioned_concurrency" if fn.provisioned_concurrency else "proactive_init"
        raise ConfigError(
            name,
            field_name,
            "does not apply to Lambda Managed Instances (their environments are initialised "
            "ahead: use min_execution_environments)",
        )


# --- config files -----------------------------------------------------------------------------

CONFIG_FIELDS = {
    "name",
    "handler",
    "code_dir",
    "memory_size_mb",
    "timeout_s",
    "reserved_concurrency",
    "provisioned_concurrency",
    "proactive_init",
    "managed_instances",
    "max_concurrency",
    "min_execution_environments",
    "max_execution_environments",
    "environment",
    "layers",
    "architecture",
    "log_format",
    "log_level",
    "version",
    "region",
}
EMULATOR_FIELDS = {
    "host",
    "port",
    "keep_warm_s",
    "account_concurrency",
    "log_dir",
    "isolation",  # "auto" (default), "namespace" or "none": see emulator.sandboxfs
    "memory_limit",  # "auto" (default), "cgroup" or "sampling": see emulator.memory_limit
    # CloudWatch metric stream via Firehose (emulator.metrics.MetricStreamConfig)
    "metric_stream_url",
    "metric_stream_access_key",
    "metric_stream_name",
    "metric_period_s",
    "metric_stream_retry_s",
    "metric_stream_gzip",
}


class ConfigFileError(ValueError):
    """A config file cannot be read or has the wrong shape; the message names the file."""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from exc


def load_config(path: str | Path) -> list[FunctionConfig]:
    """Functions from a TOML file: one `[[functions]]` table each. Relative `code_dir` and
    `layers` are relative to the file. Lambda's limits apply: memory 128-10,240 MB,
    timeout 1-900 s."""
    path = Path(path)
    data = _read_toml(path)
    tables = data.get("functions")
    if not isinstance(tables, list) or not tables:
        raise ConfigFileError(f"{path}: needs at least one [[functions]] table")
    base = path.parent
    functions: list[FunctionConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        label = str(table.get("name", f"#{index + 1}")) if isinstance(table, dict) else f"#{index}"
        if not isinstance(table, dict):
            raise ConfigFileError(f"{path}: functions[{index}] must be a table")
        unknown = sorted(set(table) - CONFIG_FIELDS)
        if unknown:
            raise ConfigError(label, unknown[0], f"unknown field; known: {sorted(CONFIG_FIELDS)}")
        for required in ("name", "handler", "code_dir"):
            if required not in table:
                raise ConfigError(label, required, "is required")
        timeout = table.get("timeout_s", 3)
        is_number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if is_number and not 1 <= timeout <= MAX_TIMEOUT_S:
            raise ConfigError(label, "timeout_s", f"{timeout} is outside 1-900 s")
        layers = table.get("layers", [])
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise ConfigError(label, "layers", "must be a list of folder paths")
        environment = table.get("environment", {})
        if not isinstance(environment, dict):
            raise ConfigError(label, "environment", 'must be a table of NAME = "value"')
        if not isinstance(table["code_dir"], str):
            raise ConfigError(label, "code_dir", "must be a folder path")
        kwargs = {k: v for k, v in table.items() if k not in ("layers", "code_dir")}
        fn = FunctionConfig(
            **kwargs,
            code_dir=base / table["code_dir"],
            layers=tuple(base / layer for layer in layers),
        )
        if fn.name in seen:
            raise ConfigError(fn.name, "name", "is used by two functions")
        seen.add(fn.name)
        functions.append(fn)
    return functions


def load_emulator_settings(path: str | Path) -> dict[str, Any]:
    """The optional `[emulator]` table: host, port, keep_warm_s, account_concurrency, log_dir
    (relative to the file)."""
    path = Path(path)
    settings = _read_toml(path).get("emulator", {})
    if not isinstance(settings, dict):
        raise ConfigFileError(f"{path}: [emulator] must be a table")
    unknown = sorted(set(settings) - EMULATOR_FIELDS)
    if unknown:
        raise ConfigFileError(f"{path}: [emulator] has unknown field {unknown[0]!r}")
    return settings
