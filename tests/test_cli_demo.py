"""`lambdascope demo --no-tui`, shortened, runs the whole toolkit and finds every problem its
fleet has; then `lambdascope tui`, driven through tmux as a person would, walks the demo's data."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The demo's output and the store it kept."""
    store = f"chdb://{tmp_path_factory.mktemp('demo') / 'store'}"
    result = subprocess.run(
        [sys.executable, "-m", "lambdascope", "demo", "--no-tui", "--duration", "10s"]
        + ["--store", store],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    yield result.stdout, store


#: Each demo function's problem as the summary names it.
EXPECTED = {
    ("csv-import", "Out of memory"),
    ("pdf-render", "Memory pressure"),
    ("session-cache", "Memory leak"),
    ("thumbnailer", "Cold starts"),
    ("thumbnailer", "Throttle"),
    ("report-export", "Timeout"),
    ("payments-webhook", "Errors"),
    ("ml-score", "Memory right-sizing"),
}


@pytest.mark.e2e
def test_demo_without_tui_finds_every_problem_of_its_fleet_in_80_columns(
    demo: tuple[str, str],
) -> None:
    output, store = demo
    summary = output.partition("in the demo fleet, the most severe first:")[2]
    lines = summary.partition("Next:")[0].splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    # function, problem and evidence are apart by two spaces or more.
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines if line.strip()]
    found = {(row[0], row[1]) for row in cells if len(row) == 3}
    assert found >= EXPECTED, EXPECTED - found
    assert "checkout" not in {function for function, _ in found}  # the healthy one
    assert f"lambdascope tui --store {store}" in output
    assert f"lambdascope report --store {store} --since 1h" in output


@pytest.mark.e2e
def test_the_demos_findings_carry_their_explanations(
    demo: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from lambdascope.analyzers import extension_overhead, memory, run_detectors, throttles
    from lambdascope.cli.demo import _configure_analyzers
    from lambdascope.collector.store import Store

    _output, store_url = demo
    # The demo's settings are process-wide: put them back for the tests that follow.
    monkeypatch.setattr(throttles, "LIMITS", throttles.LIMITS)
    monkeypatch.setattr(memory, "HIGH_SHARE", memory.HIGH_SHARE)
    monkeypatch.setattr(extension_overhead, "BUDGET", extension_overhead.BUDGET)
    _configure_analyzers()
    store = Store.open(store_url)
    try:
        reader = store.reader()
        findings = {
            (f.function_name, f.kind): f for f in run_detectors(reader, since=timedelta(hours=1))
        }
        # The slow init, split: the runtime and function code pay the 1.5 s.
        cold = findings[("thumbnailer", "cold_starts")]
        assert cold.numbers["runtime_and_function_init_p50_ms"] >= 1500
        # The new error type is named.
        assert "CardDeclinedError" in findings[("payments-webhook", "errors")].summary
        # What the timed-out exports were doing just before the deadline.
        stuck = reader.query(
            "SELECT message FROM logs WHERE function_name = 'report-export' "
            "AND position(message, 'is about to time out') > 0"
        ).rows
        assert stuck and "fetch_rows_from_warehouse" in stuck[0][0]
        # The Managed Instances function served its bursts from one environment, and every
        # log line of it belongs to a request.
        ((environments, invocations, unattributed),) = reader.query(
            "SELECT uniqExact(environment_id), count(), "
            "(SELECT count() FROM logs WHERE function_name = 'order-events' "
            "AND stream = 'function' AND request_id = '') FROM invocations "
            "WHERE function_name = 'order-events'"
        ).rows
        assert environments == 1 and invocations >= 6 and unattributed == 0
    finally:
        store.close()


class Tmux:
    """One detached tmux session of a fixed size, read back with capture-pane."""

    def __init__(self, command: str, socket: Path, size: tuple[int, int]) -> None:
        self.base = ["tmux", "-S", str(socket)]
        width, height = size
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "ui", "-x", str(width), "-y", str(height)]
            + [command],
            check=True,
            timeout=10,
        )

    def screen(self) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "ui"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "ui", *keys], check=True, timeout=10)

    def wait_for(self, seen: Callable[[str], bool], what: str, timeout_s: float = 30) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.screen()
            if seen(text):
                return text
            assert time.monotonic() < deadline, f"waited for {what}; the screen:\n{text}"
            time.sleep(0.2)

    def stop(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10)


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_tui_walks_from_the_fleet_to_a_request_and_back(
    demo: tuple[str, str], tmp_path: Path
) -> None:
    _output, store = demo
    done = tmp_path / "exit-status"
    command = (
        f"{sys.executable} -m lambdascope tui --store {store} --since 1h; "
        f"echo $? > {done}; sleep 30"
    )
    tmux = Tmux(command, tmp_path / "tmux.sock", (100, 30))
    try:
        fleet = tmux.wait_for(lambda s: "checkout" in s and "Findings" in s, "the fleet")
        assert "report-export" in fleet and "timeout" in fleet.lower()
        tmux.keys(":")
        tmux.wait_for(lambda s: "fn NAME" in s or ":" in s.splitlines()[-1], "the command line")
        tmux.keys("fn checkout", "Enter")
        function = tmux.wait_for(
            lambda s: "config" in s and " ms " in s.partition("Recent invocations")[2],
            "the function screen with its invocations",
        )
        assert "checkout" in function and "256 MB" in function
        tmux.keys("Enter")
        # The screen fills in as its reads return: wait for the log's last line too.
        tmux.wait_for(
            lambda s: (
                "START RequestId" in s and "REPORT RequestId" in s and "Where the time went" in s
            ),
            "the request's waterfall and its whole log",
        )
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Recent invocations" in s, "back on the function")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Findings" in s, "back on the fleet")
        tmux.keys("q")
        deadline = time.monotonic() + 15
        while not done.exists():
            assert time.monotonic() < deadline, tmux.screen()
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
    finally:
        tmux.stop()


def test_bad_duration_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lambdascope", "demo", "--no-tui", "--duration", "soon"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "'soon' is not a duration" in result.stderr and "Traceback" not in result.stderr
