from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from lambdascope.analyzers.alerts import (
    AlertEngine,
    AlertService,
    MemoryAlertStateStore,
    RulesError,
    RuleSet,
    RulesWatcher,
)
from tests.analyzers.alerts.fakes import FakeClient, Recorder, World, minute

RULE = """\
rules:
  - name: timeouts
    detector: timeouts
    window: {window}
    notifiers: [log]
"""


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def replace_atomically(path: Path, text: str) -> None:
    """Save the way editors do: write a temporary file, then rename it over the original."""
    temporary = path.with_name(f".{path.name}.swp")
    temporary.write_text(text)
    os.replace(temporary, path)


class Events:
    def __init__(self) -> None:
        self.reloads: list[RuleSet] = []
        self.errors: list[RulesError] = []
        self.lock = threading.Lock()

    def on_reload(self, rules: RuleSet) -> None:
        with self.lock:
            self.reloads.append(rules)

    def on_error(self, error: RulesError) -> None:
        with self.lock:
            self.errors.append(error)


@pytest.fixture
def watched(tmp_path) -> Iterator[tuple[Path, Events, RulesWatcher]]:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(window="5m"))
    events = Events()
    watcher = RulesWatcher(path, events.on_reload, events.on_error, debounce_s=0.05)
    watcher.start()
    try:
        yield path, events, watcher
    finally:
        watcher.stop()


def test_an_edited_file_is_used_by_the_next_evaluation(watched):
    path, events, watcher = watched
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 11, invocations=10, timeouts=("checkout-7",))
    assert watcher.rules is not None
    recorder = Recorder("log")
    engine = AlertEngine(
        watcher.rules,
        FakeClient(world),
        MemoryAlertStateStore(),
        {"log": recorder},
        detectors=world.detectors(),
    )
    watcher.on_reload = engine.set_rules  # what the collector wires

    # With a 5-minute window the timeout at minute 10 is out of sight at minute 20.
    assert engine.evaluate(minute(20)) == []
    replace_atomically(path, RULE.format(window="15m"))

    assert wait_for(lambda: engine.rules[0].window.total_seconds() == 900)
    (transition,) = engine.evaluate(minute(21))
    assert (transition.rule, transition.event) == ("timeouts", "firing")
    assert recorder.events == [("firing", "checkout")]


def test_a_broken_file_keeps_the_last_good_rules_and_reports_file_and_line(watched):
    path, events, watcher = watched
    good = watcher.rules

    path.write_text(RULE.format(window="5m") + "  - name: bad\n    detector: latency\n")

    assert wait_for(lambda: len(events.errors) == 1)
    (problem,) = events.errors[0].problems
    assert str(problem) == (
        f"{path}:7: rules[1] (bad).detector: 'latency' is not a registered detector: use one "
        "of cold_starts, config_checks, cost, data_completeness, errors, extension_overhead, "
        "memory, memory_leak, throttles, timeouts, version_regression"
    )
    assert watcher.rules is good
    assert len(events.reloads) == 1  # only the initial load

    replace_atomically(path, RULE.format(window="10m"))
    assert wait_for(lambda: len(events.reloads) == 2)
    assert events.reloads[-1].rules[0].window.total_seconds() == 600
    assert watcher.last_error is None


def test_saving_unchanged_content_or_touching_other_files_does_not_reload(watched):
    path, events, watcher = watched

    (path.parent / "notes.txt").write_text("unrelated")
    path.write_text(RULE.format(window="5m"))  # same bytes as loaded
    replace_atomically(path, RULE.format(window="7m"))

    assert wait_for(lambda: len(events.reloads) == 2)
    time.sleep(0.3)  # any late event from the first two writes would land by now
    assert len(events.reloads) == 2
    assert watcher.reloads == 2


def test_a_file_broken_from_the_start_reports_and_has_no_rules(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: x\n    detector: timeouts\n    window: soon\n")
    events = Events()
    watcher = RulesWatcher(path, events.on_reload, events.on_error)
    try:
        assert watcher.start() is None
    finally:
        watcher.stop()
    (error,) = events.errors
    assert f"{path}:4: rules[0] (x).window: 'soon' is not a duration" in str(error)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RulesWatcher(tmp_path / "no" / "rules.yaml", events.on_reload, events.on_error).start()


def test_the_service_evaluates_on_its_interval_and_follows_edits(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(window="5m"))
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 11, invocations=10, timeouts=("checkout-7",))
    state = MemoryAlertStateStore()
    service = AlertService(
        path,
        FakeClient(world),
        state,
        interval=timedelta(milliseconds=20),
        clock=lambda: minute(20),
    )
    service.engine.detectors = world.detectors()

    service.start()
    try:
        assert wait_for(lambda: service.loop.evaluations >= 2)
        assert state.history == []  # minute 10 is outside a 5-minute window at minute 20
        replace_atomically(path, RULE.format(window="15m"))
        assert wait_for(lambda: [t.event for t in state.history] == ["firing"])
        path.write_text("rules: [\n")
        assert wait_for(lambda: service.last_error is not None)
        assert service.engine.rules[0].window == timedelta(minutes=15)
    finally:
        service.stop()

    assert ":2: invalid YAML" in str(service.last_error)


def test_the_service_refuses_to_start_on_an_invalid_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: x\n")
    service = AlertService(path, FakeClient(World()), MemoryAlertStateStore())

    with pytest.raises(RulesError, match=r"rules.yaml:2: rules\[0\] \(x\).detector: a rule needs"):
        service.start()
    assert service.loop.evaluations == 0
