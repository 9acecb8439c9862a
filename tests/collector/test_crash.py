"""Exactly once through kill -9: the collector dies at random moments while senders retry
every unanswered batch, as the extension does; every invocation and log line is stored once,
and the per-minute rollups count each invocation once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collector.crashing import run_round


@pytest.mark.timeout(300)
def test_killed_collectors_store_every_batch_exactly_once(tmp_path: Path) -> None:
    result = run_round(tmp_path, batches=60, senders=6, kills=2, seed=20261205)
    assert len(result.batches_acknowledged) == 60  # every batch answered in the end
    assert result.sends > 60  # some were sent again after a kill
    assert result.stored_invocations == result.invocations
    assert result.function_lines == result.invocations * 2
    assert result.repeated_lines == 0
    assert result.rollup_invocations == result.invocations
