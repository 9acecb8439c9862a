"""Alerting as one start/stop object, for the collector: watch the rules file, evaluate on an
interval, notify. Wiring::

    state = ClickHouseAlertStateStore(writer)        # creates alert_state / alert_history
    service = AlertService(rules_path, store.reader(), state,
                           interval=timedelta(minutes=1), collector_url=public_url)
    service.start()      # RulesError if the file is invalid at start-up: refuse to start
    ...
    service.stop()

After start-up an invalid edit keeps the last good rules; :attr:`AlertService.last_error` holds
the problem (file and line) and it is logged.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from lambdascope.analyzers.alerts.engine import DEFAULT_COLLECTOR_URL, AlertEngine, AlertLoop, Clock
from lambdascope.analyzers.alerts.notifiers import LOGGER
from lambdascope.analyzers.alerts.rules import RulesError, RuleSet
from lambdascope.analyzers.alerts.state import AlertStateStore
from lambdascope.analyzers.alerts.watcher import RulesWatcher
from lambdascope.query import QueryClient

__all__ = ["AlertService"]


class AlertService:
    def __init__(
        self,
        rules_path: str | Path,
        client: QueryClient,
        state: AlertStateStore,
        *,
        interval: timedelta = timedelta(minutes=1),
        collector_url: str = DEFAULT_COLLECTOR_URL,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.logger = logger or LOGGER
        self.engine = AlertEngine(
            (), client, state, clock=clock, collector_url=collector_url, logger=self.logger
        )
        self.loop = AlertLoop(self.engine, interval)
        self.watcher = RulesWatcher(rules_path, self._reload, self._error)
        self.last_error: RulesError | None = None

    def _reload(self, rules: RuleSet) -> None:
        self.engine.set_rules(rules)
        self.last_error = None
        self.logger.info("alert rules loaded from %s: %d rules", rules.path, len(rules.rules))

    def _error(self, error: RulesError) -> None:
        self.last_error = error

    def start(self) -> None:
        """Load the rules (raising :class:`RulesError` when invalid), then watch and evaluate."""
        if self.watcher.start() is None:
            error = self.last_error
            self.watcher.stop()
            assert error is not None
            raise error
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()
        self.watcher.stop()

    def __enter__(self) -> AlertService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
