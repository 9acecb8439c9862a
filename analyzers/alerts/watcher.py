"""Hot reload of the rules file with ``watchdog``.

The parent directory is watched, not the file: editors save by writing a temporary file and
renaming it over the original, which replaces the inode a file watch would be attached to.
Changes are debounced (an editor's save is several events) and reloaded on a worker thread;
an invalid file keeps the last good rules and goes to ``on_error`` with its file and line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from lambdascope.analyzers.alerts.rules import RuleProblem, RulesError, RuleSet
from lambdascope.analyzers.alerts.rules_file import parse_rules

__all__ = ["RulesWatcher"]

LOGGER = logging.getLogger("lambdascope.alerts")


class _Handler(FileSystemEventHandler):
    def __init__(self, target: str, changed: threading.Event) -> None:
        self._target = target
        self._changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(p and os.path.abspath(os.fsdecode(p)) == self._target for p in paths):
            self._changed.set()


class RulesWatcher:
    """Calls ``on_reload(rules)`` with each new valid version of ``path``, ``on_error(error)``
    for an invalid one (the last good rules stay in :attr:`rules`).

    :meth:`start` loads the file once (reporting through the same callbacks) and starts
    watching; :meth:`stop` stops and joins the watcher threads.
    """

    def __init__(
        self,
        path: str | Path,
        on_reload: Callable[[RuleSet], None],
        on_error: Callable[[RulesError], None],
        *,
        debounce_s: float = 0.2,
        detectors: Collection[str] | None = None,
    ) -> None:
        self.path = Path(path).absolute()
        self.on_reload = on_reload
        self.on_error = on_error
        self.debounce_s = debounce_s
        self.detectors = detectors
        self.rules: RuleSet | None = None
        self.last_error: RulesError | None = None
        self.reloads = 0
        self._digest: str | None = None
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._observer: Any = None
        self._worker: threading.Thread | None = None

    def start(self) -> RuleSet | None:
        if self._observer is not None:
            raise RuntimeError(f"already watching {self.path}")
        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"cannot watch {self.path}: its directory {self.path.parent} does not exist"
            )
        self.reload()
        observer = Observer()
        observer.schedule(_Handler(str(self.path), self._changed), str(self.path.parent))
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._worker = threading.Thread(
            target=self._run, name="lambdascope-rules-watcher", daemon=True
        )
        self._worker.start()
        return self.rules

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5.0)
            self._observer = None
        if self._worker is not None:
            self._worker.join(5.0)
            self._worker = None

    def __enter__(self) -> RulesWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reload(self) -> bool:
        """Re-read the file now; True when new valid rules were handed to ``on_reload``."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            # Mid-rename the file can be briefly missing; the rename's own event reloads it,
            # even when the content is what was loaded before (so the error is cleared).
            self._digest = None
            return self._report(
                RulesError(
                    [RuleProblem(str(self.path), 0, "", f"cannot read: {exc.strerror or exc}")]
                )
            )
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return False
        self._digest = digest
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._report(
                RulesError([RuleProblem(str(self.path), 0, "", f"not UTF-8 text: {exc.reason}")])
            )
        try:
            rules = parse_rules(text, str(self.path), detectors=self.detectors)
        except RulesError as exc:
            return self._report(exc)
        self.rules = rules
        self.last_error = None
        self.reloads += 1
        try:
            self.on_reload(rules)
        except Exception:  # the caller's bug must not kill the watcher
            LOGGER.exception("rules reload callback failed for %s", self.path)
        return True

    def _report(self, error: RulesError) -> bool:
        self.last_error = error
        kept = f"; keeping the {len(self.rules.rules)} rules loaded before" if self.rules else ""
        LOGGER.warning("invalid rules file%s:\n%s", kept, error)
        try:
            self.on_error(error)
        except Exception:
            LOGGER.exception("rules error callback failed for %s", self.path)
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            self._changed.wait()
            if self._stop.is_set():
                return
            # Let the editor finish its burst of writes and renames before reading.
            self._stop.wait(self.debounce_s)
            self._changed.clear()
            if self._stop.is_set():
                return
            self.reload()
