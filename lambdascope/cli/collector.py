"""``lambdascope collector``: the collector as a process, with the alert rules evaluated beside
it. The collector package serves and stores; this module adds what only a whole process has:
signals, exit statuses and the alert engine from the analyzers."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from lambdascope.collector.access import AccessError, check_exposure
from lambdascope.collector.httpserver import TlsError, TlsFiles
from lambdascope.collector.schema import DEFAULT_RETENTION_DAYS, SchemaError
from lambdascope.collector.server import DEFAULT_PORT, CollectorServer
from lambdascope.collector.store import Store, StoreError

if TYPE_CHECKING:
    from lambdascope.analyzers.alerts import AlertService
    from lambdascope.collector.cluster import ClusterConfig

__all__ = ["run_collector"]


def run_collector(
    store_url: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    database: str = "lambdascope",
    ingest_token: str | None = None,
    read_token: str | None = None,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    rules_path: str | Path | None = None,
    alert_interval: timedelta = timedelta(minutes=1),
    cluster: ClusterConfig | None = None,
    read_open: bool = False,
    tls: TlsFiles | None = None,
    read_store_url: str | None = None,
    ingest_workers: int = 0,
) -> None:
    """Open the store, serve until SIGINT/SIGTERM, then stop cleanly: requests in flight
    finish and their batches are written before the process exits.

    Refuses (exit status 2, saying the fix) to listen beyond loopback without an ingest token,
    or without a read token unless ``read_open``; likewise for a store that cannot be opened
    or TLS files that cannot be used.
    """
    try:
        for warning in check_exposure(host, ingest_token, read_token, read_open=read_open):
            print(f"lambdascope collector: {warning}", file=sys.stderr)
        if tls is not None:
            tls.check()
    except (AccessError, TlsError) as exc:
        print(f"lambdascope collector: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if rules_path is not None:
        _check_rules(Path(rules_path))
    try:
        store = Store.open(
            store_url,
            database,
            retention_days=retention_days,
            cluster=cluster,
            read_url=read_store_url,
        )
    except (StoreError, SchemaError) as exc:
        print(f"lambdascope collector: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for warning in store.read_access_warnings():
        print(f"lambdascope collector: {warning}", file=sys.stderr, flush=True)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # Signal handlers can only be installed from the main thread; elsewhere the caller
        # stops the collector by other means (KeyboardInterrupt does not reach other threads).
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
    server = CollectorServer(
        store,
        host,
        port,
        ingest_token=ingest_token,
        read_token=read_token,
        tls=tls,
        ingest_workers=ingest_workers,
    )
    alerts: AlertService | None = None
    try:
        try:
            server.start()
        except OSError as exc:
            print(
                f"lambdascope collector: cannot listen on {host}:{port}: "
                f"{exc.strerror or exc}. Is another collector running? Choose another --port.",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        print(
            f"lambdascope collector listening on {server.url} "
            f"(store {store.url}, database {store.database})",
            flush=True,
        )
        if rules_path is not None:
            alerts = _start_alerts(store, Path(rules_path), alert_interval, server.url)
        while not stop.wait(timeout=0.5):
            pass
    finally:
        if alerts is not None:
            alerts.stop()
        server.stop()
        store.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start_alerts(
    store: Store, rules_path: Path, interval: timedelta, collector_url: str
) -> AlertService:
    """Evaluate the alert rules inside the collector; an invalid rules file refuses to start."""
    from lambdascope.analyzers.alerts import (
        ALERT_TABLES_DDL,
        AlertService,
        ClickHouseAlertStateStore,
        RulesError,
    )

    store.create_tables(ALERT_TABLES_DDL)
    state = ClickHouseAlertStateStore(store.open_writer(), create_tables=False)
    service = AlertService(
        rules_path, store.reader(), state, interval=interval, collector_url=collector_url
    )
    try:
        service.start()
    except RulesError as exc:
        print(f"lambdascope collector: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"alert rules from {rules_path}, evaluated every {interval}", flush=True)
    return service


def _check_rules(rules_path: Path) -> None:
    """Refuse to start on an invalid rules file, before announcing the collector as up."""
    from lambdascope.analyzers.alerts import RulesError, load_rules

    try:
        load_rules(rules_path)
    except RulesError as exc:
        print(f"lambdascope collector: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
