from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lambdascope.analyzers.alerts import (
    AlertEngine,
    CommandNotifier,
    Dispatcher,
    MemoryAlertStateStore,
    NotifierError,
    SlackNotifier,
    WebhookNotifier,
    parse_rules,
)
from tests.analyzers.alerts.fakes import FakeClient, Recorder, World, minute


class Receiver:
    """A local webhook receiver on 127.0.0.1 that records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                receiver.requests.append((self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self, path: str) -> list[Any]:
        return [body for p, _, body in self.requests if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(5)


RULES = """
notifiers:
  hook: {type: webhook, url: "URL/generic", timeout: 2s, headers: {X-Lambdascope-Token: s3cret}}
  chat: {type: slack, url: "URL/slack", timeout: 2s}
rules:
  - name: timeouts
    detector: timeouts
    kind: timeout
    window: 5m
    severity: critical
    notifiers: [hook, chat, log]
"""


def timeout_world() -> World:
    world = World()
    world.set("checkout", 0, 60, invocations=10)
    world.set("checkout", 10, 11, invocations=10, timeouts=("checkout-7",))
    return world


def test_generic_and_slack_webhooks_receive_firing_and_resolved(receiver, caplog):
    rules = parse_rules(RULES.replace("URL", receiver.url), "rules.yaml")
    world = timeout_world()
    engine = AlertEngine(
        rules,
        FakeClient(world),
        MemoryAlertStateStore(),
        None,  # built from the file's `notifiers:` section
        detectors=world.detectors(),
        collector_url="http://127.0.0.1:4999",
    )

    with caplog.at_level(logging.INFO, logger="lambdascope.alerts"):
        for m in (11, 12, 16):
            engine.evaluate(minute(m))

    generic = receiver.bodies("/generic")
    assert [(b["event"], b["function_name"]) for b in generic] == [
        ("firing", "checkout"),
        ("resolved", "checkout"),
    ]
    firing = generic[0]
    assert firing["finding"]["evidence_request_ids"] == ["checkout-7"]
    assert firing["finding"]["numbers"]["timeouts"] == 1
    assert firing["query"]["sql"] == "SELECT timeouts FROM invocations"
    assert (
        firing["tui"]["command"] == "lambdascope tui --collector http://127.0.0.1:4999 --since 1h"
    )
    headers = next(h for p, h, _ in receiver.requests if p == "/generic")
    assert headers["X-Lambdascope-Token"] == "s3cret"
    assert headers["Content-Type"] == "application/json"

    slack = receiver.bodies("/slack")
    assert len(slack) == 2
    assert slack[0]["text"].startswith("[CRITICAL] FIRING timeouts on checkout: 1 of 50")
    assert "request checkout-7" in slack[0]["text"]
    kinds = [b["type"] for b in slack[0]["blocks"]]
    assert kinds[:2] == ["section", "section"] and "context" in kinds
    blob = json.dumps(slack[0]["blocks"])
    assert "lambdascope tui --collector http://127.0.0.1:4999" in blob
    assert "SELECT timeouts FROM invocations" in blob
    assert ":white_check_mark:" in json.dumps(slack[1]["blocks"])

    logged = [r for r in caplog.records if r.name == "lambdascope.alerts"]
    assert [r.levelname for r in logged] == ["ERROR", "INFO"]
    assert logged[0].getMessage().startswith("[CRITICAL] FIRING timeouts on checkout")


def test_a_webhook_that_answers_an_error_status_is_a_failure_naming_the_notifier(receiver):
    receiver.status = 500

    with pytest.raises(NotifierError, match=r"notifier 'hook': .*/generic answered 500"):
        WebhookNotifier("hook", f"{receiver.url}/generic", timeout_s=2).send({"x": 1})
    with pytest.raises(NotifierError, match=r"notifier 'chat': cannot POST to http://127.0.0.1:9"):
        SlackNotifier("chat", "http://127.0.0.1:9/none", timeout_s=2).send({"text": "x"})


SCRIPT = """
import json, sys
payload = json.load(sys.stdin)
with open(sys.argv[1], "w") as out:
    json.dump({"event": payload["event"], "rule": payload["rule"]["name"]}, out)
"""


def test_the_command_notifier_gets_the_payload_on_stdin(tmp_path):
    script = tmp_path / "notify.py"
    script.write_text(SCRIPT)
    written = tmp_path / "got.json"
    notifier = CommandNotifier("pager", (sys.executable, str(script), str(written)), timeout_s=10)

    notifier.send({"event": "firing", "rule": {"name": "timeouts"}})

    assert json.loads(written.read_text()) == {"event": "firing", "rule": "timeouts"}


def test_a_failing_or_slow_command_is_reported_and_killed(tmp_path):
    failing = CommandNotifier(
        "pager", (sys.executable, "-c", "import sys; sys.exit('no route to pager')"), timeout_s=5
    )
    with pytest.raises(NotifierError, match=r"'pager': .* exited with 1: no route to pager"):
        failing.send({})

    slow = CommandNotifier("slow", (sys.executable, "-c", "import time; time.sleep(30)"), 0.5)
    started = time.monotonic()
    with pytest.raises(NotifierError, match=r"did not finish within 0.5 s and was killed"):
        slow.send({})
    assert time.monotonic() - started < 5

    missing = CommandNotifier("gone", (str(tmp_path / "nope"),), timeout_s=1)
    with pytest.raises(NotifierError, match=r"cannot run .*nope"):
        missing.send({})


class Failing:
    name = "broken"
    timeout_s = 1.0

    def send(self, payload: Mapping[str, Any]) -> None:
        raise NotifierError("notifier 'broken': receiver refused")


class Hanging:
    """Blocks until released (the test releases it in finally, so no thread outlives it)."""

    name = "hanging"
    timeout_s = 0.3

    def __init__(self) -> None:
        self.release = threading.Event()

    def send(self, payload: Mapping[str, Any]) -> None:
        self.release.wait(30)


def test_a_failing_and_a_hanging_notifier_do_not_stop_the_others(caplog):
    hanging = Hanging()
    first, last = Recorder("first"), Recorder("last")
    dispatcher = Dispatcher(max_workers=4, grace_s=0.2)
    jobs: list[tuple[Any, Mapping[str, Any]]] = [
        (first, {"n": 1}),
        (Failing(), {"n": 1}),
        (hanging, {"n": 1}),
        (last, {"n": 1}),
    ]
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="lambdascope.alerts"):
            result = dispatcher.dispatch(jobs)
        elapsed = time.monotonic() - started
    finally:
        hanging.release.set()

    assert elapsed < 3  # bounded by the hanging notifier's 0.3 s timeout, not its 30 s hang
    assert sorted(result.delivered) == ["first", "last"]
    assert first.payloads == [{"n": 1}] and last.payloads == [{"n": 1}]
    assert dict(result.failures) == {
        "broken": "notifier 'broken': receiver refused",
        "hanging": "notifier 'hanging' did not finish within 0.3 s; skipped it",
    }
    assert dispatcher.failures == {"broken": 1, "hanging": 1}
    assert dispatcher.abandoned == 1
    assert len([r for r in caplog.records if "alert notification failed" in r.getMessage()]) == 2


def test_the_engine_reports_notifier_failures_and_still_records_the_transition():
    rules = parse_rules(
        "notifiers: {a: {type: log}, b: {type: log}}\n"
        "rules:\n  - {name: t, detector: timeouts, window: 5m, notifiers: [a, b]}\n",
        "rules.yaml",
    )
    world = timeout_world()
    delivered = Recorder("b")
    store = MemoryAlertStateStore()
    engine = AlertEngine(
        rules,
        FakeClient(world),
        store,
        {"a": Failing(), "b": delivered},
        detectors=world.detectors(),
    )

    (transition,) = engine.evaluate(minute(11))

    assert transition.event == "firing"
    assert delivered.events == [("firing", "checkout")]
    assert engine.errors == ["notifier 'broken': receiver refused"]
    assert [t.event for t in store.history] == ["firing"]
    assert engine.dispatcher.failures == {"broken": 1}


def test_more_jobs_than_workers_are_all_delivered_in_turn():
    recorders = [Recorder(f"r{i}") for i in range(5)]
    dispatcher = Dispatcher(max_workers=2)

    result = dispatcher.dispatch([(r, {"i": i}) for i, r in enumerate(recorders)])

    assert result.failures == []
    assert sorted(result.delivered) == [f"r{i}" for i in range(5)]
    assert [r.payloads for r in recorders] == [[{"i": i}] for i in range(5)]
