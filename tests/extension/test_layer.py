from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lambdascope.extension.layer import build_layer_dir, build_layer_zip
from tests.extension.fakes import (
    FakeCollector,
    FakeLambdaApi,
    extension_env,
    invocation_events,
    report_event,
    stop_process,
)


def test_layer_dir_layout(tmp_path: Path) -> None:
    launcher = build_layer_dir(tmp_path / "layer", name="scope")
    assert launcher == tmp_path / "layer" / "extensions" / "scope"
    assert os.access(launcher, os.X_OK)
    assert launcher.read_text().startswith("#!/bin/sh\n")
    package = tmp_path / "layer" / "lambdascope_extension" / "extension"
    names = sorted(p.name for p in package.iterdir())
    assert "agent.py" in names and "__init__.py" in names and "__main__.py" in names
    assert all(name.endswith(".py") for name in names)  # no __pycache__, no tests


def test_rebuilding_replaces_stale_files(tmp_path: Path) -> None:
    build_layer_dir(tmp_path)
    stale = tmp_path / "lambdascope_extension" / "extension" / "stale.py"
    stale.write_text("x = 1\n")
    build_layer_dir(tmp_path)
    assert not stale.exists()


def test_bad_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        build_layer_dir(tmp_path, name="a/b")
    with pytest.raises(ValueError, match="not a Lambda architecture"):
        build_layer_zip(tmp_path / "l.zip", arch="sparc")


def test_layer_zip_has_lambda_layout_and_an_executable_launcher(tmp_path: Path) -> None:
    output = build_layer_zip(tmp_path / "out" / "layer.zip", arch="arm64")
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
        launcher = archive.getinfo("extensions/lambdascope")
        assert stat.S_IMODE(launcher.external_attr >> 16) == 0o755
        assert "lambdascope_extension/extension/agent.py" in names
        assert not any("tests/" in name for name in names)
        pycs = [name for name in names if name.endswith(".pyc")]
        tag = sys.implementation.cache_tag
        assert pycs and all("__pycache__/" in n and f".{tag}.pyc" in n for n in pycs)
    with zipfile.ZipFile(build_layer_zip(tmp_path / "plain.zip", precompile=False)) as archive:
        assert not any("__pycache__" in name for name in archive.namelist())
    # the same sources give the same bytes (reproducible builds)
    again = build_layer_zip(tmp_path / "again.zip", arch="arm64")
    assert again.read_bytes() == output.read_bytes()


def test_launcher_from_an_extracted_zip_starts_the_extension(tmp_path: Path) -> None:
    output = build_layer_zip(tmp_path / "layer.zip", arch="x86_64")
    opt = tmp_path / "opt"
    with zipfile.ZipFile(output) as archive:
        archive.extractall(opt)
    for info in zipfile.ZipFile(output).infolist():  # zipfile drops modes; unzip keeps them
        (opt / info.filename).chmod(stat.S_IMODE(info.external_attr >> 16))
    _run_lifecycle(opt / "extensions" / "lambdascope", "lambdascope")


def test_precompiled_bytecode_is_used_from_a_read_only_layer(tmp_path: Path) -> None:
    output = build_layer_zip(tmp_path / "layer.zip")
    with zipfile.ZipFile(output) as archive:
        archive.extractall(tmp_path / "opt")
    package = tmp_path / "opt" / "lambdascope_extension"
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-v",
            "-c",
            f"import sys; sys.path.insert(0, {str(package)!r}); import extension.agent",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "code object from" in result.stderr and "agent." in result.stderr
    loaded = [line for line in result.stderr.splitlines() if "code object from" in line]
    assert any("__pycache__/agent." in line for line in loaded)


def test_launcher_from_build_layer_dir_starts_the_extension(tmp_path: Path) -> None:
    launcher = build_layer_dir(tmp_path / "opt", name="scope-dev")
    _run_lifecycle(launcher, "scope-dev")


def _run_lifecycle(launcher: Path, name: str) -> None:
    api = FakeLambdaApi().start()
    process = subprocess.Popen(
        [str(launcher)],
        cwd="/",  # a clean folder: nothing of the repository on the path
        env=extension_env(api),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert api.wait_next_calls(1), "the launcher did not start the extension"
        assert api.registrations[0][0]["Lambda-Extension-Name"] == name
        api.invoke("req-1")
        assert api.wait_next_calls(2)
        api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
        api.stop()
    assert "Traceback" not in stderr


def _lambda_pythons() -> list[str]:
    """The Lambda Python versions (3.9-3.13) found on this machine, else the current one."""
    found = []
    for version in ("3.9", "3.13"):
        for candidate in sorted(Path("/root/.pyenv/versions").glob(version + ".*/bin/python3")):
            found.append(str(candidate))
            break
    return found or [sys.executable]


@pytest.mark.parametrize("python", _lambda_pythons())
def test_the_extension_runs_on_the_oldest_and_newest_lambda_pythons(
    tmp_path: Path, python: str
) -> None:
    launcher = build_layer_dir(tmp_path / "opt")
    api = FakeLambdaApi().start()
    collector = FakeCollector().start()
    env = extension_env(api, LAMBDASCOPE_PYTHON=python, LAMBDASCOPE_COLLECTOR_URL=collector.url)
    process = subprocess.Popen(
        [str(launcher)], cwd="/", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert api.wait_next_calls(1)
        api.invoke("req-1")
        api.post_telemetry(invocation_events("req-1") + [report_event("req-1")])
        assert api.wait_next_calls(2)
        api.shutdown_event()
        assert process.wait(timeout=10) == 0
    finally:
        _stdout, stderr = stop_process(process)
        api.stop()
        collector.stop()
    assert "Traceback" not in stderr, stderr
    assert collector.stored_telemetry() == invocation_events("req-1") + [report_event("req-1")]
    assert [r["request_id"] for r in collector.stored_invocations()] == ["req-1"]


LAYER_TOP_LEVEL = {"extensions", "lambdascope_extension", "python"}


def _extract(output: Path, opt: Path) -> None:
    with zipfile.ZipFile(output) as archive:
        archive.extractall(opt)
        for info in archive.infolist():  # zipfile drops modes; unzip keeps them
            (opt / info.filename).chmod(stat.S_IMODE(info.external_attr >> 16))


def test_layer_zip_has_a_python_folder_with_the_helper_and_opentelemetry(tmp_path: Path) -> None:
    output = build_layer_zip(tmp_path / "layer.zip", arch="x86_64")
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == LAYER_TOP_LEVEL
    assert not any(".." in name.split("/") or name.startswith("/") for name in names)
    for required in (
        "python/lambdascope_tracing/__init__.py",
        "python/lambdascope_tracing/exporter.py",
        "python/opentelemetry/trace/__init__.py",
        "python/opentelemetry/sdk/trace/__init__.py",
        "python/opentelemetry/semconv/__init__.py",
        "python/typing_extensions.py",
    ):
        assert required in names, required
    # the API finds its context implementation through entry points: the metadata must travel
    assert any(
        n.startswith("python/opentelemetry_api-") and n.endswith("/entry_points.txt") for n in names
    )
    assert not any("/tests/" in name or name.endswith(".pth") for name in names)
    without = build_layer_zip(tmp_path / "bare.zip", python_packages=False)
    with zipfile.ZipFile(without) as archive:
        assert not any(name.startswith("python/") for name in archive.namelist())


def test_python_folder_alone_imports_the_helper_and_opentelemetry(tmp_path: Path) -> None:
    output = build_layer_zip(tmp_path / "layer.zip", arch="arm64")
    opt = tmp_path / "opt"
    _extract(output, opt)
    python = opt / "python"
    script = f"""
import sys
sys.path[:] = [{str(python)!r}] + [p for p in sys.path if "site-packages" not in p]
import lambdascope_tracing, opentelemetry.trace, opentelemetry.sdk.trace
for name, module in sorted(sys.modules.items()):
    if name.split(".")[0] in ("opentelemetry", "lambdascope_tracing", "typing_extensions"):
        assert getattr(module, "__file__", None) is None or module.__file__.startswith(
            {str(python)!r}), (name, module.__file__)
@lambdascope_tracing.instrument
def handler(event, context):
    return "ok"
assert lambdascope_tracing._created_provider is not None, "the SDK was not set up"
print(handler({{}}, None))
"""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDASCOPE_TRACING_TIMEOUT_MS": "50",
        # nothing listens there: the export fails quietly, the handler still answers
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_layer_dir_can_carry_the_python_folder(tmp_path: Path) -> None:
    build_layer_dir(tmp_path / "layer", python_packages=True)
    python = tmp_path / "layer" / "python"
    assert (python / "lambdascope_tracing" / "__init__.py").is_file()
    assert (python / "opentelemetry" / "sdk" / "trace" / "__init__.py").is_file()
    stale = python / "stale.py"
    stale.write_text("x = 1\n")
    build_layer_dir(tmp_path / "layer", python_packages=True)
    assert not stale.exists()
