"""Shared fixtures: real emulators over the fixture handlers and the recording extension."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdascope.emulator import Emulator, FunctionConfig

FIXTURES = Path(__file__).parent / "fixtures"
HANDLERS = FIXTURES / "handlers"
RECORDER_LAYER = FIXTURES / "recorder_layer"


def wait_for(predicate: Callable[[], Any], timeout_s: float = 5.0, what: str = "condition") -> Any:
    """Poll `predicate` every 20 ms until truthy; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Recording:
    """What the recorder extension wrote to its JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        # The recorder may be writing right now: a last line without its newline is not whole.
        whole = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in whole.splitlines() if line.strip()]

    def telemetry(self) -> list[dict[str, Any]]:
        return [x["event"] for x in self.lines() if x["kind"] == "telemetry"]

    def types(self) -> list[str]:
        return [e["type"] for e in self.telemetry()]

    def platform(self, event_type: str) -> list[dict[str, Any]]:
        return [e["record"] for e in self.telemetry() if e["type"] == event_type]

    def extension_events(self) -> list[dict[str, Any]]:
        return [x["event"] for x in self.lines() if x["kind"] == "event"]

    def report_for(self, request_id: str, timeout_s: float = 5.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for record in self.platform("platform.report"):
                if record["requestId"] == request_id:
                    return record
            return None

        return wait_for(find, timeout_s, f"platform.report of {request_id}")


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[Recording]:
    """The recorder's output must be visible inside the environments, whose /tmp is private
    when they run in mount namespaces: /dev/shm is not covered (tmp_path is under /tmp)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="emulator-recording-", dir=shm))
        try:
            yield Recording(folder / "recorder.jsonl")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        yield Recording(tmp_path / "recorder.jsonl")


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Build and start emulators; every one is stopped when the test ends."""
    started: list[Emulator] = []

    def make(functions: list[FunctionConfig], **kwargs: Any) -> Emulator:
        emu = Emulator(functions, **kwargs)
        started.append(emu)
        return emu.start()

    try:
        yield make
    finally:
        for emu in started:
            emu.stop()


def function(
    name: str,
    handler: str,
    *,
    recording: Recording | None = None,
    environment: dict[str, str] | None = None,
    **kwargs: Any,
) -> FunctionConfig:
    env = dict(environment or {})
    layers: tuple[Path, ...] = ()
    if recording is not None:
        env["RECORDER_OUT"] = str(recording.path)
        layers = (RECORDER_LAYER,)
    kwargs.setdefault("timeout_s", 1.0)
    return FunctionConfig(
        name=name, handler=handler, code_dir=HANDLERS, layers=layers, environment=env, **kwargs
    )
