"""The extension's own start-up figure: process start to the first `next`."""

from __future__ import annotations

import time

from lambdascope.extension.agent import process_startup_ms


def test_launcher_timestamp_gives_the_process_start_to_ready_time() -> None:
    ready = 1795506789.5
    assert process_startup_ms({"LAMBDASCOPE_LAUNCHED_AT": "1795506789.488000"}, ready) == 12.0
    # bash prints EPOCHREALTIME with the locale's decimal separator
    assert process_startup_ms({"LAMBDASCOPE_LAUNCHED_AT": "1795506789,490000"}, ready) == 10.0
    assert process_startup_ms({}, None) is None


def test_without_the_timestamp_proc_gives_a_coarse_figure() -> None:
    # this test process started well before now: its age is seconds, never negative
    figure = process_startup_ms({"LAMBDASCOPE_LAUNCHED_AT": "not a time"}, time.time())
    assert figure is not None and 0 <= figure < 3_600_000
