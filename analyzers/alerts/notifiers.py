"""Delivering notification payloads: generic webhook, Slack webhook, shell command, the log.

Each notifier has its own timeout, and :class:`Dispatcher` runs them concurrently on a bounded
pool with a deadline, so a notifier that fails or hangs never stops the others: its failure is
counted and logged, and the rest are delivered.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lambdascope.analyzers.alerts.payload import slack_message
from lambdascope.analyzers.alerts.rules import NotifierConfig

__all__ = [
    "CommandNotifier",
    "DispatchResult",
    "Dispatcher",
    "LogNotifier",
    "Notifier",
    "NotifierError",
    "SlackNotifier",
    "WebhookNotifier",
    "build_notifiers",
]

LOGGER = logging.getLogger("lambdascope.alerts")
_LEVELS = {"critical": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


class NotifierError(Exception):
    """A notification could not be delivered; the message names the notifier and the cause."""


class Notifier(Protocol):
    name: str
    timeout_s: float

    def send(self, payload: Mapping[str, Any]) -> None:
        """Deliver ``payload`` or raise :class:`NotifierError`."""
        ...


def _post_json(
    name: str, url: str, body: Any, timeout_s: float, headers: Sequence[tuple[str, str]]
) -> None:
    data = json.dumps(body, default=str).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    for key, value in headers:
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        raise NotifierError(f"notifier {name!r}: {url} answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NotifierError(
            f"notifier {name!r}: cannot POST to {url}: {reason}. Check the URL and that the "
            "receiver is up."
        ) from exc


@dataclass
class WebhookNotifier:
    """POSTs the payload as JSON."""

    name: str
    url: str
    timeout_s: float = 10.0
    headers: tuple[tuple[str, str], ...] = ()

    def send(self, payload: Mapping[str, Any]) -> None:
        _post_json(self.name, self.url, payload, self.timeout_s, self.headers)


@dataclass
class SlackNotifier:
    """POSTs ``{"text": ..., "blocks": ...}`` (Slack incoming webhooks and compatibles)."""

    name: str
    url: str
    timeout_s: float = 10.0
    headers: tuple[tuple[str, str], ...] = ()

    def send(self, payload: Mapping[str, Any]) -> None:
        _post_json(self.name, self.url, slack_message(payload), self.timeout_s, self.headers)


@dataclass
class CommandNotifier:
    """Runs a program (no shell) with the payload as JSON on stdin; exit 0 means delivered."""

    name: str
    argv: tuple[str, ...]
    timeout_s: float = 10.0

    def send(self, payload: Mapping[str, Any]) -> None:
        try:
            done = subprocess.run(
                list(self.argv),
                input=json.dumps(payload, default=str).encode(),
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise NotifierError(
                f"notifier {self.name!r}: {self.argv[0]} did not finish within "
                f"{self.timeout_s:g} s and was killed"
            ) from exc
        except OSError as exc:
            raise NotifierError(
                f"notifier {self.name!r}: cannot run {self.argv[0]}: {exc.strerror or exc}. "
                "Use an absolute path to an executable."
            ) from exc
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip()[-300:]
            raise NotifierError(
                f"notifier {self.name!r}: {self.argv[0]} exited with {done.returncode}"
                + (f": {tail}" if tail else "")
            )


@dataclass
class LogNotifier:
    """Writes the payload's one-line text to the ``lambdascope.alerts`` logger."""

    name: str = "log"
    timeout_s: float = 1.0
    logger: logging.Logger = field(default=LOGGER)

    def send(self, payload: Mapping[str, Any]) -> None:
        level = _LEVELS.get(str(payload.get("severity")), logging.WARNING)
        if payload.get("event") == "resolved":
            level = logging.INFO
        self.logger.log(level, "%s", payload.get("text", ""))


def build_notifiers(
    configs: Sequence[NotifierConfig], *, logger: logging.Logger | None = None
) -> dict[str, Notifier]:
    """The notifiers a rules file defines, by name; ``log`` is always there."""
    out: dict[str, Notifier] = {"log": LogNotifier(logger=logger or LOGGER)}
    for config in configs:
        timeout_s = config.timeout.total_seconds()
        if config.type == "webhook":
            out[config.name] = WebhookNotifier(config.name, config.url, timeout_s, config.headers)
        elif config.type == "slack":
            out[config.name] = SlackNotifier(config.name, config.url, timeout_s, config.headers)
        elif config.type == "command":
            out[config.name] = CommandNotifier(config.name, config.command, timeout_s)
        else:
            out[config.name] = LogNotifier(config.name, timeout_s, logger or LOGGER)
    return out


@dataclass
class DispatchResult:
    delivered: list[str] = field(default_factory=list)
    #: (notifier name, what went wrong)
    failures: list[tuple[str, str]] = field(default_factory=list)


class Dispatcher:
    """Sends (notifier, payload) jobs concurrently, each bounded by its notifier's timeout.

    At most ``max_workers`` jobs run at once. A job still running at its deadline is reported
    as failed and abandoned on its daemon thread (never joined, so it can neither hold up the
    next evaluation nor the process's exit); :attr:`abandoned` counts them. ``failures`` and
    ``delivered`` count per notifier over the dispatcher's life.
    """

    def __init__(
        self,
        *,
        max_workers: int = 8,
        grace_s: float = 1.0,
        logger: logging.Logger | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.grace_s = grace_s
        self.logger = logger or LOGGER
        self.failures: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self.abandoned = 0
        self._lock = threading.Lock()

    def dispatch(self, jobs: Sequence[tuple[Notifier, Mapping[str, Any]]]) -> DispatchResult:
        result = DispatchResult()
        if not jobs:
            return result
        slots = threading.BoundedSemaphore(self.max_workers)
        longest = max(float(n.timeout_s) for n, _ in jobs)
        waves = math.ceil(len(jobs) / self.max_workers)
        # A job may wait for a slot behind ``waves - 1`` others, each bounded by its timeout.
        start_by = time.monotonic() + (waves - 1) * (longest + self.grace_s)
        running: list[tuple[Notifier, threading.Event, list[BaseException], float]] = []
        for notifier, payload in jobs:
            if not slots.acquire(timeout=max(0.0, start_by - time.monotonic())):
                self._failed(
                    result,
                    notifier.name,
                    f"notifier {notifier.name!r} not started: all {self.max_workers} notifier "
                    "threads are busy",
                )
                continue
            done = threading.Event()
            errors: list[BaseException] = []
            thread = threading.Thread(
                target=_run_job,
                args=(notifier, payload, errors, done, slots),
                name=f"lambdascope-notify-{notifier.name}",
                daemon=True,
            )
            thread.start()
            deadline = time.monotonic() + float(notifier.timeout_s) + self.grace_s
            running.append((notifier, done, errors, deadline))
        for notifier, done, errors, deadline in running:
            if not done.wait(max(0.0, deadline - time.monotonic())):
                with self._lock:
                    self.abandoned += 1
                self._failed(
                    result,
                    notifier.name,
                    f"notifier {notifier.name!r} did not finish within "
                    f"{float(notifier.timeout_s):g} s; skipped it",
                )
            elif errors:
                error = errors[0]
                self._failed(result, notifier.name, str(error) or type(error).__name__)
            else:
                result.delivered.append(notifier.name)
                with self._lock:
                    self.delivered[notifier.name] += 1
        return result

    def _failed(self, result: DispatchResult, name: str, message: str) -> None:
        result.failures.append((name, message))
        with self._lock:
            self.failures[name] += 1
        self.logger.warning("alert notification failed: %s", message)


def _run_job(
    notifier: Notifier,
    payload: Mapping[str, Any],
    errors: list[BaseException],
    done: threading.Event,
    slots: threading.BoundedSemaphore,
) -> None:
    try:
        notifier.send(payload)
    except BaseException as exc:  # a notifier's bug must not stop the others
        errors.append(exc)
    finally:
        slots.release()
        done.set()
