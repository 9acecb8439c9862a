from __future__ import annotations

import json
from datetime import timedelta

import pytest

from lambdascope.analyzers import DETECTORS, cost, run_detectors
from lambdascope.analyzers.cost import CostRow, PriceTable, cost_findings, cost_rows
from lambdascope.analyzers.window import Window
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW

# video_encode in the last hour: 116 warm invocations billed 60 s and 4 cold starts billed
# 60.4 s (init included since 2025-08-01, counted once), at 10 GB.
TODAY_GB_S = (116 * 60 + 4 * 60.4) * 10
TODAY_USD = TODAY_GB_S * 0.0000166667 + 120 * 0.20 / 1e6
YESTERDAY_USD = (19 * 60 + 60.4) * 10 * 0.0000166667 + 20 * 0.20 / 1e6


def detect(store):
    """This detector alone over the last hour (the others have their own tests)."""
    return run_detectors(
        store.reader,
        since=timedelta(hours=1),
        now=NOW,
        detectors={"cost": DETECTORS["cost"]},
    )


def test_expensive_spiking_oversized_x86_function(store):
    store.write(fleetdata.cost_fleet())

    found = detect(store)

    assert [(f.kind, f.severity, f.function_name) for f in found] == [
        ("cost_spike", "warning", "video_encode"),
        ("arm64_savings", "info", "video_encode"),
        ("cost_top", "info", "video_encode"),
        ("memory_rightsizing", "info", "video_encode"),
    ]
    spike, arm, top, right = found
    assert top.numbers["gb_seconds"] == pytest.approx(TODAY_GB_S)
    assert top.numbers["total_cost_usd"] == pytest.approx(TODAY_USD)
    assert top.numbers["monthly_cost_usd"] == pytest.approx(TODAY_USD * 730)
    assert top.numbers["init_share"] == pytest.approx(4 * 0.4 * 10 / TODAY_GB_S)
    assert top.numbers["rank"] == 1
    assert top.summary == (
        "video_encode cost $1.20 in 1 h (~$876.21/month at this rate): 120 requests, "
        "72,016 GB-s on x86_64 in us-east-1"
    )
    assert spike.numbers["today_cost_usd"] == pytest.approx(TODAY_USD)
    assert spike.numbers["yesterday_cost_usd"] == pytest.approx(YESTERDAY_USD)
    assert spike.numbers["today_invocations"] == 120
    assert spike.numbers["yesterday_invocations"] == 20
    assert spike.summary == (
        "video_encode cost $1.20 in the last 24 h against $0.20 the day before (6.0x)"
    )
    assert right.numbers["suggested_memory_mb"] == 2624  # 2,000 MB peak + 30%, 64 MB steps
    assert right.numbers["p99_memory_used_mb"] == pytest.approx(2000, abs=1)
    saving = (TODAY_USD - 120 * 0.20 / 1e6) * (1 - 2624 / 10240) * 730
    assert right.numbers["monthly_saving_usd"] == pytest.approx(saving)
    assert right.summary.endswith("2624 MB would save about $651.67/month")
    assert arm.numbers["monthly_saving_usd"] == pytest.approx(
        (TODAY_USD - 120 * 0.20 / 1e6) * (1 - 0.0000133334 / 0.0000166667) * 730
    )
    assert "arm64 (Graviton) bills 20.0% less" in arm.summary


def test_healthy_fleet_costs_too_little_to_mention_but_has_a_cost_table(store):
    store.write(fleetdata.healthy_fleet())

    assert detect(store) == []
    table = cost.cost_table(store.reader, Window.ending(NOW, timedelta(hours=1)))
    assert [c.function_name for c in table] == ["thumbnailer", "report_export", "checkout"]
    # thumbnailer: 30 invocations at 512 MB, 850/1200/990 ms (+420 ms init billed once).
    billed_ms = 10 * (850 + 1200 + 990) + 420
    assert table[0].gb_seconds == pytest.approx(billed_ms / 1000 * 0.5)
    assert table[0].request_cost_usd == pytest.approx(30 * 0.20 / 1e6)


def row(**over):
    base = {
        "function_name": "api",
        "architecture": "arm64",
        "region": "eu-west-1",
        "invocations": 1_000_000,
        "billed_seconds": 100_000.0,
        "gb_seconds": 50_000.0,
        "init_gb_seconds": 5_000.0,
        "post_runtime_gb_seconds": 10_000.0,
        "gb_seconds_with_runtime_done": 40_000.0,
        "largest_memory_size_mb": 512,
        "p99_memory_used_mb": 400.0,
        "peak_memory_used_mb": 420.0,
    }
    return {**base, **over}


def test_price_table_overrides_regions_storage_and_provisioned_concurrency(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "regions": {
                    "eu-west-1": {
                        "request_usd_per_million": 0.25,
                        "gb_second_usd": {"arm64": 0.0000134},
                    }
                },
                "ephemeral_storage_mb": {"api": 1536},
                "provisioned_concurrency": {"api": 2},
            }
        )
    )
    prices = PriceTable.from_file(path)
    window = Window.ending(NOW, timedelta(hours=1))

    (c,) = cost_rows([row()], window, prices)

    assert c.request_cost_usd == pytest.approx(0.25)
    assert c.duration_cost_usd == pytest.approx(50_000 * 0.0000134)
    assert c.ephemeral_cost_usd == pytest.approx(1.0 * 100_000 * 0.0000000309)  # 1 GB above 512
    assert c.provisioned_cost_usd == pytest.approx(2 * 0.5 * 3600 * 0.0000033334)
    assert c.init_share == pytest.approx(0.1)
    assert c.post_runtime_share == pytest.approx(0.25)
    (top,) = [f for f in cost_findings([c], window) if f.kind == "cost_top"]
    assert "inits are 10.0% of billed time; 25.0% is billed after the response" in top.summary


def test_bad_price_tables_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="unknown key 'gb_price'"):
        PriceTable.from_dict({"gb_price": 1})
    with pytest.raises(ValueError, match=r"gb_second_usd.arm64: must be a number"):
        PriceTable.from_dict({"gb_second_usd": {"arm64": "cheap"}})
    with pytest.raises(ValueError, match="request_usd_per_million: must not be negative"):
        PriceTable.from_dict({"request_usd_per_million": -1})
    with pytest.raises(ValueError, match=r"regions.eu-west-1: unknown key 'gb'"):
        PriceTable.from_dict({"regions": {"eu-west-1": {"gb": 1}}})
    with pytest.raises(ValueError, match=r"regions.eu-west-1.gb_second_usd.arm64: must be a"):
        PriceTable.from_dict({"regions": {"eu-west-1": {"gb_second_usd": {"arm64": None}}}})
    broken = tmp_path / "prices.yaml"
    broken.write_text("regions: [unclosed\n")
    with pytest.raises(ValueError, match="prices.yaml: not JSON or YAML"):
        PriceTable.from_file(broken)


def test_configured_prices_change_the_findings(monkeypatch):
    window = Window.ending(NOW, timedelta(hours=1))
    cheap = PriceTable.from_dict({"gb_second_usd": {"x86_64": 0.0000000001}})
    monkeypatch.setattr(cost, "PRICES", cheap)
    (c,) = cost_rows([row(architecture="x86_64")], window, cost.PRICES)

    assert isinstance(c, CostRow)
    assert [f.kind for f in cost_findings([c], window)] == ["cost_top"]  # requests still cost


def test_only_the_largest_savings_are_listed():
    window = Window.ending(NOW, timedelta(hours=1))
    rows = [
        row(function_name=f"fn{i:02d}", architecture="x86_64", gb_seconds=50_000.0 * (i + 1))
        for i in range(8)
    ]

    findings = cost_findings(cost_rows(rows, window, PriceTable()), window)

    arm = [f.function_name for f in findings if f.kind == "arm64_savings"]
    assert arm == ["fn07", "fn06", "fn05", "fn04", "fn03"]
    assert [f.function_name for f in findings if f.kind == "cost_top"] == ["fn07", "fn06", "fn05"]


def _rollup(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "function_name": "checkout",
        "requests": 1_000_000,
        "billed_gb_seconds": 1000.0,
        "billed_seconds": 8000.0,
        "memory_size_mb": 128,
        "architectures": ["x86_64"],
        "regions": ["us-east-1"],
    }
    row.update(changes)
    return row


def test_estimated_costs_price_rollup_rows_like_the_raw_cost_model():
    window = Window(NOW - timedelta(hours=1), NOW)
    prices = PriceTable()

    costs = cost.estimated_costs(
        [
            _rollup(),
            _rollup(architectures=["arm64"]),
            _rollup(function_name="idle", requests=3, billed_gb_seconds=0.0),
        ],
        window,
        prices,
    )

    assert costs["checkout"] == pytest.approx(1000 * 0.0000166667 + 1000 * 0.0000133334 + 2 * 0.20)
    assert costs["idle"] == pytest.approx(3 * 0.20 / 1e6)


def test_estimated_costs_honour_the_settings_prices_and_configuration():
    window = Window(NOW - timedelta(hours=1), NOW)
    prices = PriceTable.from_dict(
        {
            "request_usd_per_million": 0.0,
            "regions": {"eu-central-1": {"gb_second_usd": {"x86_64": 0.00002}}},
            "provisioned_concurrency": {"checkout": 2},
            "ephemeral_storage_mb": {"checkout": 1536},
        }
    )
    # A deploy that switched regions mid-bucket is priced at the mean of both prices.
    row = _rollup(regions=["eu-central-1", "us-east-1"], billed_gb_seconds=100.0)

    costs = cost.estimated_costs([row], window, prices)

    gb_second = (0.00002 + 0.0000166667) / 2
    provisioned = 2 * 128 / 1024 * 3600 * 0.0000041667
    ephemeral = 1 * 8000 * 0.0000000309
    assert costs["checkout"] == pytest.approx(100 * gb_second + provisioned + ephemeral)
