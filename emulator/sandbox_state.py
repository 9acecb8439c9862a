"""What the parts of one execution environment share, behind one condition variable: the
lifecycle (`environment`) hands invocations and extension events out through it, the Runtime
and Extensions API handlers (`sandbox_handlers`) take them and record each `next`, and the
process watchers (`sandbox_processes`) notify it when a process exits.

HTTP handler threads block on `cv` for long polls. Never call a LineReader's `sync()` while
holding it (its reader thread takes locks of its own while handing over lines).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from lambdascope.emulator import events


@dataclass
class Outcome:
    """What the Invoke API answers for one invocation."""

    request_id: str
    payload: bytes
    function_error: str | None
    log_lines: list[str]


@dataclass
class Invocation:
    """One invocation as its environment runs it (`*_mono`: monotonic clock seconds)."""

    request_id: str
    payload: bytes
    trace_id: str
    deadline_ms: int
    started_at: float  # epoch s
    started_mono: float
    deadline_mono: float
    log_lines: list[str]
    init_duration_s: float | None
    client_context: str | None = None
    kind: str | None = None  # "response" or "error" once the runtime posted
    body: bytes = b""
    error_type: str | None = None
    response_started_mono: float | None = None
    response_done_mono: float | None = None
    runtime_done_mono: float | None = None
    answered: threading.Event = field(default_factory=threading.Event)
    completed: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None

    def answer(self, payload: bytes, function_error: str | None) -> None:
        """Answer the caller; only the first answer counts (a timeout after a response)."""
        if not self.answered.is_set():
            self.outcome = Outcome(self.request_id, payload, function_error, [])
            self.answered.set()


@dataclass
class RegisteredExtension:
    """An extension that called `register`, with the events it waits for."""

    name: str
    identifier: str
    events: list[str]
    external: bool  # an executable in a layer's extensions/ folder, not a runtime thread
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    waiting: bool = False  # blocked in event/next with nothing to deliver


@dataclass
class SandboxState:
    """Shared between threads under `cv`: whoever changes what another thread waits for
    notifies it."""

    cv: threading.Condition = field(default_factory=threading.Condition)
    closing: bool = False  # shut down: long polls end and nothing is handed out again
    init_done: bool = False  # registration and Telemetry subscriptions are closed
    runtime_ready: bool = False  # the runtime called `next` during init
    # When (epoch s) the runtime finished its init: its first `next`, or its init error.
    runtime_init_done_at: float | None = None
    init_error: tuple[str, bytes] | None = None  # (errorType, body for the caller)
    current: Invocation | None = None
    runtime_pending: Invocation | None = None  # for the runtime's next `next`
    extensions: dict[str, RegisteredExtension] = field(default_factory=dict)  # by identifier
    # The launched extensions' executables: only they may register for SHUTDOWN.
    external_names: set[str] = field(default_factory=set)
    # Lambda Managed Instances: many runtime workers poll `next` at once (see emulator.managed).
    managed: bool = False
    workers_waiting: int = 0  # runtime workers blocked in `next` right now
    pending: deque[Invocation] = field(default_factory=deque)  # for the next worker's `next`
    in_flight: dict[str, Invocation] = field(default_factory=dict)  # by request id, until reported
    # The invocation each worker connection took last (its HTTP handler thread's ident): the
    # worker's next `next` on that connection ends the invocation's runtime part.
    taken_by: dict[int, Invocation] = field(default_factory=dict)
    timed_out: set[str] = field(default_factory=set)  # answered with a timeout, worker unaware

    def fail_init(self, error_type: str, message: str) -> None:
        """Record why the init failed, with the body its invocation is answered with."""
        self.init_error = (error_type, events.error_body(error_type, message))

    def registered_names(self) -> set[str]:
        return {x.name for x in self.extensions.values()}

    def extensions_idle(self) -> bool:
        """Every registered extension waits in `next` with nothing left to deliver."""
        return all(x.waiting and not x.queue for x in self.extensions.values())

    def deliver(self, event_type: str, event: dict[str, Any]) -> None:
        """Queue `event` to each extension registered for `event_type` (INVOKE, SHUTDOWN)."""
        for ext in self.extensions.values():
            if event_type in ext.events:
                ext.queue.append(dict(event))
                ext.waiting = False

    def restart_init(self) -> None:
        """Forget what the last init's processes registered and posted, for a new init."""
        self.extensions.clear()
        self.external_names.clear()
        self.runtime_ready = False
        self.runtime_init_done_at = None
        self.init_error = None
        self.init_done = False
