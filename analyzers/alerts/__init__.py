"""Alert rules over the detectors: a YAML rules file, an engine with pending/firing/resolved
states, notifiers, and hot reload.

Analyzers read the store only through :class:`lambdascope.query.QueryClient`; alert state is
written through a *writer* object the caller passes in (the collector's ClickHouse client).
"""

from __future__ import annotations

from pathlib import Path

from lambdascope.analyzers.alerts.engine import (
    DEFAULT_COLLECTOR_URL,
    AlertEngine,
    AlertLoop,
    Observation,
    advance,
)
from lambdascope.analyzers.alerts.notifiers import (
    CommandNotifier,
    Dispatcher,
    LogNotifier,
    Notifier,
    NotifierError,
    SlackNotifier,
    WebhookNotifier,
    build_notifiers,
)
from lambdascope.analyzers.alerts.rules import (
    DetectorSource,
    NotifierConfig,
    Rule,
    RuleProblem,
    RulesError,
    RuleSet,
    SqlSource,
    Threshold,
)
from lambdascope.analyzers.alerts.rules_file import load_rules, parse_rules
from lambdascope.analyzers.alerts.service import AlertService
from lambdascope.analyzers.alerts.sql import ALERT_TABLES_DDL
from lambdascope.analyzers.alerts.state import (
    AlertState,
    AlertStateStore,
    ClickHouseAlertStateStore,
    MemoryAlertStateStore,
    StateStoreError,
    Transition,
    create_alert_tables,
)
from lambdascope.analyzers.alerts.watcher import RulesWatcher

#: The rule pack shipped with lambdascope (documented thresholds).
DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")

__all__ = [
    "ALERT_TABLES_DDL",
    "DEFAULT_COLLECTOR_URL",
    "DEFAULT_RULES_PATH",
    "AlertEngine",
    "AlertLoop",
    "AlertService",
    "AlertState",
    "AlertStateStore",
    "ClickHouseAlertStateStore",
    "CommandNotifier",
    "DetectorSource",
    "Dispatcher",
    "LogNotifier",
    "MemoryAlertStateStore",
    "Notifier",
    "NotifierConfig",
    "NotifierError",
    "Observation",
    "Rule",
    "RuleProblem",
    "RuleSet",
    "RulesError",
    "RulesWatcher",
    "SlackNotifier",
    "SqlSource",
    "StateStoreError",
    "Threshold",
    "Transition",
    "WebhookNotifier",
    "advance",
    "build_notifiers",
    "create_alert_tables",
    "load_rules",
    "parse_rules",
]
