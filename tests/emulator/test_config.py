"""FunctionConfig validation: errors name the function and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdascope.emulator import ConfigError, FunctionConfig

from .conftest import HANDLERS, RECORDER_LAYER


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "has space"}, "name"),
        ({"handler": "nodot"}, "handler"),
        ({"code_dir": Path("/definitely/not/here")}, "code_dir"),
        ({"memory_size_mb": 127}, "memory_size_mb"),
        ({"memory_size_mb": 10_241}, "memory_size_mb"),
        ({"memory_size_mb": 128.5}, "memory_size_mb"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 901}, "timeout_s"),
        ({"layers": (Path("/no/such/layer"),)}, "layers"),
        ({"environment": {"A": 1}}, "environment"),
        ({"log_format": "XML"}, "log_format"),
        ({"log_level": "LOUD"}, "log_level"),
        ({"architecture": "sparc"}, "architecture"),
        ({"reserved_concurrency": -1}, "reserved_concurrency"),
        ({"provisioned_concurrency": -1}, "provisioned_concurrency"),
        ({"reserved_concurrency": 1, "provisioned_concurrency": 2}, "provisioned_concurrency"),
    ],
)
def test_invalid_fields_are_named(overrides, field):
    kwargs = {"name": "checkout", "handler": "app.ok", "code_dir": HANDLERS, **overrides}
    with pytest.raises(ConfigError) as caught:
        FunctionConfig(**kwargs)
    assert caught.value.field_name == field
    assert f"field {field!r}" in str(caught.value)
    assert repr(kwargs["name"]) in str(caught.value)


def test_valid_config_normalises_paths_and_builds_the_arn():
    fn = FunctionConfig("checkout", "app.ok", str(HANDLERS), layers=[str(HANDLERS)])
    assert fn.code_dir == HANDLERS and fn.layers == (HANDLERS,)
    assert fn.function_arn == "arn:aws:lambda:us-east-1:000000000000:function:checkout"


def test_an_extension_executable_passed_as_a_layer_names_the_layer_folder():
    with pytest.raises(ConfigError) as caught:
        FunctionConfig(
            "ok", "app.ok", HANDLERS, layers=(RECORDER_LAYER / "extensions" / "recorder",)
        )
    assert caught.value.field_name == "layers"
    assert f"pass its layer folder {str(RECORDER_LAYER)!r} instead" in str(caught.value)
