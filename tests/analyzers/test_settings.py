"""The analysis settings file: limits and prices from TOML reach the detectors; a bad file is
refused with its name, line and key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lambdascope.analyzers import DETECTORS, cost, memory, run_detectors, throttles
from lambdascope.analyzers.settings import (
    SettingsError,
    apply_settings,
    load_settings,
    parse_settings,
)
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW
from tests.analyzers.test_throttles import START, write_metrics


@pytest.fixture(autouse=True)
def _restore_detector_settings(monkeypatch):
    # apply_settings sets process-wide values: put the current ones back after each test.
    monkeypatch.setattr(throttles, "LIMITS", throttles.LIMITS)
    monkeypatch.setattr(cost, "PRICES", cost.PRICES)
    monkeypatch.setattr(memory, "HIGH_SHARE", memory.HIGH_SHARE)


def detect(store, name):
    return run_detectors(
        store.reader, since=timedelta(hours=1), now=NOW, detectors={name: DETECTORS[name]}
    )


def test_a_reserved_limit_from_the_file_makes_the_function_near_its_reservation(store, tmp_path):
    store.write(fleetdata.healthy_fleet())
    records = fleetdata.function_minutes("reports", START, 10, invocations=30, concurrency=9)
    records += fleetdata.account_minutes(START, 10, concurrency=12, claimed=12, unreserved=2)
    write_metrics(store, records)
    assert detect(store, "throttles") == []  # without the settings, 9 executions mean nothing

    path = tmp_path / "lambdascope.toml"
    path.write_text("[concurrency]\naccount_limit = 500\n\n[concurrency.reserved]\nreports = 10\n")
    apply_settings(load_settings(path))

    (finding,) = detect(store, "throttles")
    assert (finding.kind, finding.function_name) == ("concurrency_near_limit", "reports")
    assert finding.summary == (
        "reports reached 9 of its 10 reserved concurrent executions (90.0%); it is throttled "
        "beyond that"
    )
    assert throttles.LIMITS.account_concurrency == 500


def test_a_price_override_from_the_file_changes_the_cost_findings(store, tmp_path):
    store.write(fleetdata.cost_fleet())
    before = {f.kind: f for f in detect(store, "cost")}
    assert before["cost_top"].numbers["total_cost_usd"] == pytest.approx(1.2, abs=0.01)
    assert "arm64_savings" in before

    path = tmp_path / "lambdascope.toml"
    # x86_64 at arm64's price, twice the list price: no arm64 saving left, and a dearer bill.
    path.write_text(
        "[prices]\n"
        "gb_second_usd = { x86_64 = 0.0000333334, arm64 = 0.0000333334 }\n"
        "request_usd_per_million = 0.20\n"
    )
    apply_settings(load_settings(path))

    after = {f.kind: f for f in detect(store, "cost")}
    assert "arm64_savings" not in after
    assert after["cost_top"].numbers["total_cost_usd"] == pytest.approx(
        2 * before["cost_top"].numbers["duration_cost_usd"]
        + before["cost_top"].numbers["request_cost_usd"],
        rel=1e-4,
    )
    assert after["cost_top"].summary.startswith("video_encode cost $2.40 in 1 h")


def test_every_part_of_the_file_is_read():
    settings = parse_settings(
        """
        [concurrency]
        account_limit = 3000
        [concurrency.reserved]
        checkout = 100
        "report-export" = 0

        [prices]
        request_usd_per_million = 0.25
        [prices.regions.eu-central-1]
        gb_second_usd = { x86_64 = 0.000018 }
        [prices.ephemeral_storage_mb]
        video-encode = 10240
        [prices.provisioned_concurrency]
        checkout = 5
        """
    )
    assert settings.limits.account_concurrency == 3000
    assert settings.limits.reserved == {"checkout": 100, "report-export": 0}
    prices = settings.prices
    assert prices.request("us-east-1") == pytest.approx(0.25 / 1e6)
    assert prices.gb_second("x86_64", "eu-central-1") == 0.000018
    assert prices.gb_second("arm64", "eu-central-1") == 0.0000133334  # the default stays
    assert prices.ephemeral_storage_mb == {"video-encode": 10240}
    assert prices.provisioned_concurrency == {"checkout": 5}
    assert parse_settings("") == parse_settings("# nothing set\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[concurrency]\naccount_limit = 0\n",
            "s.toml:2: concurrency.account_limit: must be a positive whole number",
        ),
        (
            "[concurrency.reserved]\ncheckout = 10\nreports = -2\n",
            "s.toml:3: concurrency.reserved.reports: must be a whole number of executions",
        ),
        ("[concurrency]\nreserve = 3\n", "s.toml:2: concurrency.reserve: unknown key"),
        ("\n[concurency]\nx = 1\n", "s.toml:2: concurency: unknown table"),
        (
            "[prices]\nrequest_usd_per_million = 0.2\ngb_second_usd = { arm64 = 'cheap' }\n",
            "s.toml:3: prices.gb_second_usd.arm64: must be a number, got 'cheap'",
        ),
        (
            "[prices.regions.eu-west-1]\n\ngb = 1\n",
            "s.toml:3: prices.regions.eu-west-1.gb: unknown key 'gb'",
        ),
        ("[prices]\nx = [1,\n", "s.toml:2: not valid TOML: Invalid value"),
        ("[prices]\n\nx = 1 2\n", "s.toml:3: not valid TOML"),
    ],
)
def test_a_bad_file_names_its_line_and_key(text, message):
    with pytest.raises(SettingsError) as caught:
        parse_settings(text, "s.toml")
    assert str(caught.value).startswith(message)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="nope.toml: cannot read the settings file"):
        load_settings(tmp_path / "nope.toml")


def test_the_memory_early_warning_threshold_is_a_setting(store, tmp_path):
    store.write(fleetdata.high_memory_fleet())  # thumbnailer peaks at 490-500 of 512 MB
    path = tmp_path / "lambdascope.toml"
    path.write_text("[memory]\nwarn_at_percent = 99\n")
    apply_settings(load_settings(path))
    assert detect(store, "memory") == []  # 97.7% is below the 99% asked for

    path.write_text("[memory]\nwarn_at_percent = 90\n")
    apply_settings(load_settings(path))
    (finding,) = detect(store, "memory")
    assert finding.kind == "high_memory" and finding.numbers["warn_at_pct"] == 90.0


@pytest.mark.parametrize("value", ["0", "101", "'high'"])
def test_a_memory_threshold_outside_a_percentage_is_refused(value):
    with pytest.raises(SettingsError, match=r"s:2: memory.warn_at_percent: must be a percentage"):
        parse_settings(f"[memory]\nwarn_at_percent = {value}\n", "s")
