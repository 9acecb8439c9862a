from __future__ import annotations

from pathlib import Path
from typing import Any

from lambdascope.extension import procstats

STAT = "cpu  100 5 40 9000 3 2 1 0 0 0\ncpu0 50 2 20 4500 1 1 0 0 0 0\n"
NET_DEV = (Path(__file__).parent / "data" / "proc_net_dev.txt").read_text()
MEMINFO = "MemTotal:        2000000 kB\nMemFree:          500000 kB\nMemAvailable:    1500000 kB\n"


def test_parsers() -> None:
    assert procstats.parse_cpu_jiffies(STAT) == (105, 43)
    assert procstats.parse_net_bytes(NET_DEV) == (1500, 2100)
    assert procstats.parse_meminfo_used_kb(MEMINFO) == 500000
    assert procstats.parse_meminfo_used_kb("MemTotal: 10 kB\n") is None
    assert procstats.parse_loadavg_threads("0.10 0.20 0.30 2/345 6789\n") == 345
    assert procstats.parse_first_int("1184\t0\t9223372036854775807\n") == 1184
    assert procstats.parse_status_kb("Name:\tpython\nVmHWM:\t   11976 kB\n", "VmHWM") == 11976
    assert procstats.parse_cpu_jiffies("garbage") is None


def test_summarise_reports_differences_and_maxima() -> None:
    start = {
        "cpu_user_ticks": 100,
        "cpu_system_ticks": 40,
        "net_rx_bytes": 10,
        "net_tx_bytes": None,
    }
    end = {"cpu_user_ticks": 130, "cpu_system_ticks": 45, "net_rx_bytes": 60, "net_tx_bytes": 5}
    maxima: dict[str, int | None] = {}
    procstats.merge_maxima(maxima, {"max_open_fds": 10, "max_threads": None})
    procstats.merge_maxima(maxima, {"max_open_fds": 7, "max_threads": 4})
    summary = procstats.summarise(start, end, maxima, samples=3, ticks_per_s=100)
    assert summary == {
        "cpu_user_ms": 300,
        "cpu_system_ms": 50,
        "net_rx_bytes": 50,
        "net_tx_bytes": None,
        "samples": 3,
        "max_open_fds": 10,
        "max_threads": 4,
    }


def test_sampler_attaches_proc_to_each_finished_invocation() -> None:
    finished: list[dict[str, Any]] = []
    sampler = procstats.ProcSampler(interval_s=0.01, sink=finished.append).start()
    try:
        sampler.finish()
        assert finished == []  # nothing open yet
        sampler.rollover({"request_id": "a"})
        sampler.rollover({"request_id": "b"})  # a ends where b begins
        sampler.finish()
        assert [r["request_id"] for r in finished] == ["a", "b"]
        for record in finished:
            proc = record["proc"]
            assert proc["samples"] >= 2
            assert proc["max_env_memory_used_kb"] > 0
            assert proc["max_threads"] >= 1
        sampler.finish()
        assert len(finished) == 2
    finally:
        sampler.stop()


def test_sampling_stops_once_the_runtime_is_done_with_the_invocation() -> None:
    import time

    finished: list[dict[str, Any]] = []
    done: set[str] = set()
    sampler = procstats.ProcSampler(
        interval_s=0.01, sink=finished.append, finished=done.__contains__
    ).start()
    try:
        sampler.rollover({"request_id": "a"})
        time.sleep(0.15)  # about 15 periodic samples while "a" runs
        done.add("a")  # its platform.runtimeDone arrived
        time.sleep(0.05)
        sampler.finish()
        while_running = finished[0]["proc"]["samples"]
        assert while_running >= 4
        sampler.rollover({"request_id": "b"})
        done.add("b")
        time.sleep(0.15)  # no periodic samples: b's runtime is done
        sampler.finish()
        assert finished[1]["proc"]["samples"] == 2  # its opening and closing readings
    finally:
        sampler.stop()


def test_self_usage_reports_peak_memory_and_cpu() -> None:
    usage = procstats.self_usage()
    assert usage["peak_rss_kb"] > 1000
    assert usage["cpu_ms"] > 0
