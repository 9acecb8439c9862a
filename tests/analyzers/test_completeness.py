"""data_completeness: invocations without a REPORT, events the extension dropped, environments
that went silent without a final flush, events not sent at shutdown; and the fleet table's
share of it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lambdascope.analyzers import DETECTORS, Window, completeness, run_detectors
from lambdascope.analyzers.completeness import completeness_findings
from lambdascope.analyzers.fleet import fleet_summary
from lambdascope.analyzers.settings import SettingsError, apply_settings, parse_settings
from lambdascope.collector.normalize import normalize_batch
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, Inv, Scenario, clean_stats, stats_batch

HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _restore_threshold(monkeypatch):
    # apply_settings sets it process-wide: put the current one back after each test.
    monkeypatch.setattr(completeness, "SILENT_AFTER", completeness.SILENT_AFTER)


def detect(store, since=HOUR):
    return run_detectors(
        store.reader,
        since=since,
        now=NOW,
        detectors={"data_completeness": DETECTORS["data_completeness"]},
    )


def write_batches(store, batches):
    for batch in batches:
        store.store.write(normalize_batch(batch))


def healthy_with_final_flushes(store):
    """The healthy fleet, each environment reporting clean figures and its final flush."""
    scenario = fleetdata.healthy_fleet()
    store.write(scenario)
    for name in ("checkout", "thumbnailer", "report_export"):
        count = sum(1 for i in scenario.invocations if i.function_name == name)
        write_batches(
            store,
            [
                stats_batch(
                    name, "1", NOW - timedelta(minutes=20), clean_stats(count, final=False)
                ),
                stats_batch(name, "1", NOW - timedelta(minutes=10), clean_stats(count, final=True)),
            ],
        )


def test_a_clean_fleet_has_no_finding(store):
    healthy_with_final_flushes(store)

    assert detect(store) == []
    assert detect(store, since=timedelta(hours=3)) == []


def test_events_not_sent_at_shutdown_and_dropped_are_named(store):
    healthy_with_final_flushes(store)
    final = {
        **clean_stats(40, final=True),
        "events_received": 2_400,
        "events_sent": 1_600,
        "events_dropped": {"buffer_full": 0, "shutdown_unspooled": 800},
        "shutdown_reason": "spindown",
        "shutdown_batches_unsent": 11,
        "shutdown_events_unsent": 800,
    }
    write_batches(store, [stats_batch("checkout", "2", NOW - timedelta(minutes=5), final)])

    (finding,) = detect(store)

    assert (finding.kind, finding.function_name) == ("data_completeness", "checkout")
    assert finding.summary == (
        "checkout: 800 events were dropped by the extension (not sent at shutdown and not "
        "spooled), 800 events were not sent at shutdown"
    )
    # A third of what the extension received was lost.
    assert finding.severity == "critical"
    assert finding.numbers["events_dropped_shutdown_unspooled"] == 800
    assert finding.numbers["shutdown_events_unsent"] == 800
    assert "collector is reachable" in finding.recommendation


def test_events_spooled_at_shutdown_are_named_without_a_drop(store):
    spooled = {
        **clean_stats(40, final=True),
        "spooled_batches": 11,
        "shutdown_batches_unsent": 11,
        "shutdown_events_unsent": 800,
    }
    write_batches(store, [stats_batch("checkout", "1", NOW - timedelta(minutes=5), spooled)])

    (finding,) = detect(store)

    assert finding.summary == "checkout: 800 events were not sent at shutdown"
    assert finding.severity == "warning"


def test_an_environment_without_a_final_flush_last_seen_an_hour_ago_went_silent(store):
    healthy_with_final_flushes(store)
    write_batches(
        store,
        [
            stats_batch("orders", "a", NOW - timedelta(minutes=m), clean_stats(n, final=False))
            for m, n in ((80, 5), (70, 9), (60, 12))
        ]
        # Still sending, no final flush yet: not silent.
        + [stats_batch("orders", "b", NOW - timedelta(minutes=4), clean_stats(3, final=False))]
        # Flushed at shutdown an hour ago: not silent either.
        + [stats_batch("orders", "c", NOW - timedelta(minutes=65), clean_stats(7, final=True))],
    )

    (finding,) = detect(store, since=2 * HOUR)

    assert finding.summary == "orders: 1 environment went silent without a final flush"
    assert finding.severity == "warning"
    assert (finding.numbers["silent_environments"], finding.numbers["environments"]) == (1, 3)
    # Its last row is at the window's start: an hour-long window ending now still holds it.
    assert [f.summary for f in detect(store)] == [finding.summary]
    # Outside the window, nothing is said about it.
    assert detect(store, since=timedelta(minutes=30)) == []


def test_the_silence_threshold_is_a_setting(store):
    write_batches(
        store,
        [stats_batch("orders", "a", NOW - timedelta(minutes=40), clean_stats(3, final=False))],
    )
    assert len(detect(store)) == 1

    apply_settings(parse_settings("[completeness]\nsilent_after_minutes = 45\n"))

    assert detect(store) == []
    with pytest.raises(SettingsError, match="s.toml:2: completeness.silent_after_minutes: must"):
        parse_settings("[completeness]\nsilent_after_minutes = 0\n", "s.toml")
    with pytest.raises(SettingsError, match="s.toml:2: completeness.silent: unknown key"):
        parse_settings("[completeness]\nsilent = 3\n", "s.toml")


def test_only_the_drops_of_the_window_count(store):
    def at(minutes: int, buffer_full: int, final: bool = False) -> dict:
        stats = {**clean_stats(10, final=final), "events_dropped": {"buffer_full": buffer_full}}
        return stats_batch("orders", "a", NOW - timedelta(minutes=minutes), stats)

    # 50 dropped three hours ago; none since, then 20 more in the window.
    write_batches(store, [at(180, 50), at(50, 50), at(30, 50), at(10, 70, final=True)])

    (finding,) = detect(store)

    assert finding.summary == (
        "orders: 20 events were dropped by the extension (lost to a full buffer)"
    )
    assert "LAMBDASCOPE_BUFFER_MAX_EVENTS" in finding.recommendation
    # The 20 were dropped after the row 30 minutes ago.
    assert [f.summary for f in detect(store, since=timedelta(minutes=20))] == [finding.summary]
    assert detect(store, since=timedelta(minutes=5)) == []


def many_environments(unreported_envs: int) -> Scenario:
    """orders in five environments, four invocations each, 20 s apart."""
    scenario = Scenario()
    start = NOW - timedelta(minutes=40)
    for env in range(1, unreported_envs + 1):
        for i in range(4):
            scenario.invocations.append(
                Inv(
                    "orders",
                    f"orders-{env}-{i}",
                    start + timedelta(seconds=20 * i + env),
                    120.0,
                    environment=str(env),
                )
            )
    return scenario


def test_invocations_whose_report_never_came_beyond_the_running_environments(store):
    # Each environment's last report travels in its SHUTDOWN batch: lose those batches.
    write_batches(
        store,
        [b for b in fleetdata.batches(many_environments(5)) if b["invocations"]],
    )

    (finding,) = detect(store)

    assert finding.summary == "orders: 5 of 20 invocations have no REPORT"
    assert finding.severity == "critical"  # a quarter of the invocations
    assert "function's logs" in finding.recommendation

    # The same environments still running (recent batches, no final flush): each may hold its
    # last invocation's report until its next invocation or shutdown.
    write_batches(
        store,
        [
            stats_batch("orders", str(env), NOW - timedelta(minutes=2), clean_stats(4, final=False))
            for env in range(1, 6)
        ],
    )
    assert detect(store) == []


def test_the_message_counts_every_loss_in_users_words():
    window = Window.ending(NOW, HOUR)
    invocations = [{"function_name": "orders", "invocations": 500, "unreported": 37}]
    delivery = [
        {
            "function_name": "orders",
            "environments": 12,
            "silent_environments": 2,
            "open_environments": 0,
            "events_dropped": {"shutdown_unspooled": 790, "buffer_full": 10},
            "events_dropped_total": 800,
            "events_received": 10_000,
            "shutdown_events_unsent": 800,
        }
    ]

    (finding,) = completeness_findings(invocations, delivery, window)

    assert finding.summary == (
        "orders: 37 of 500 invocations have no REPORT, 800 events were dropped by the extension "
        "(790 not sent at shutdown and not spooled, 10 lost to a full buffer), "
        "2 environments went silent without a final flush, 800 events were not sent at shutdown"
    )
    assert finding.severity == "warning"  # 7.4% and 8.0%: under a tenth
    lost = [{**invocations[0], "unreported": 50}]
    assert completeness_findings(lost, delivery, window)[0].severity == "critical"
    # Two lost reports alone are under the floor; one running environment may hold one.
    few = [{**invocations[0], "unreported": 2}]
    assert completeness_findings(few, [], window) == []


def test_the_fleet_table_shows_what_the_extension_dropped_and_silent_environments(store):
    store.write(fleetdata.healthy_fleet())
    dropped = {**clean_stats(40, final=False), "events_dropped": {"buffer_full": 30}}
    write_batches(store, [stats_batch("checkout", "1", NOW - timedelta(minutes=30), dropped)])

    fleet = {r.function_name: r for r in fleet_summary(store.reader, since=HOUR, now=NOW)}

    assert (fleet["checkout"].events_dropped, fleet["checkout"].silent_environments) == (30, 1)
    assert (fleet["thumbnailer"].events_dropped, fleet["thumbnailer"].silent_environments) == (0, 0)
