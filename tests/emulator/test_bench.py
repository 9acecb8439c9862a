"""The emulator's own benchmark runs and reports sane figures."""

from lambdascope.emulator.bench import run_benchmark


def test_benchmark_reports_warm_overhead_and_cold_starts():
    result = run_benchmark(runs=20, cold_runs=1)
    warm = result["warm_overhead_ms"]
    assert warm["samples"] == 20
    assert 0 < warm["median"] < 50
    cold = result["cold_start_ms"]
    assert 0 < cold["plain"]["median"] < 5000
    assert cold["with_ext"]["median"] > 0
