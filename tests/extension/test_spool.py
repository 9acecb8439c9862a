from __future__ import annotations

from pathlib import Path

from lambdascope.extension.spool import Spool, parse_spool_name, spool_name


def _oldest(spool: Spool) -> tuple[str, bytes, int] | None:
    item = spool.take_oldest()
    return None if item is None else item[:3]


def test_spool_returns_batches_oldest_first(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s"), max_bytes=1000)
    assert spool.take_oldest() is None
    assert spool.put("a" * 32, b"first", 3)
    assert spool.put("b" * 32, b"second", 4)
    assert _oldest(spool) == ("a" * 32, b"first", 3)
    assert _oldest(spool) == ("b" * 32, b"second", 4)
    assert spool.take_oldest() is None


def test_full_spool_drops_the_oldest_and_counts_events(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s"), max_bytes=250)
    for number in range(5):
        assert spool.put(f"{number:032x}", b"x" * 100, 10)
    assert spool.used_bytes <= 250
    assert spool.dropped_batches == 3 and spool.dropped_events == 30
    assert _oldest(spool) == (f"{3:032x}", b"x" * 100, 10)


def test_a_batch_larger_than_the_spool_is_refused(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s"), max_bytes=10)
    assert spool.put("a" * 32, b"x" * 11, 1) is False
    assert len(spool) == 0


def test_a_new_spool_object_finds_batches_left_by_a_previous_process(tmp_path: Path) -> None:
    Spool(str(tmp_path / "s"), max_bytes=1000).put("c" * 32, b"left", 2)
    assert _oldest(Spool(str(tmp_path / "s"), max_bytes=1000)) == ("c" * 32, b"left", 2)


def test_unwritable_spool_reports_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    spool = Spool(str(blocker / "s"), max_bytes=1000)
    assert spool.put("a" * 32, b"x", 1) is False


def test_explicit_sequence_orders_batches(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s"), max_bytes=1000)
    spool.put("b" * 32, b"2", 1, sequence=20)
    spool.put("a" * 32, b"1", 1, sequence=10)
    assert spool.take_oldest() == ("a" * 32, b"1", 1, 10)


def test_names_round_trip_and_foreign_files_are_ignored(tmp_path: Path) -> None:
    assert parse_spool_name(spool_name(12, "ab" * 16, 7)) == (12, "ab" * 16, 7)
    assert parse_spool_name("notes.txt") is None
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "junk.gz").write_bytes(b"x")
    assert Spool(str(tmp_path / "s"), 1000).take_oldest() is None
