"""CloudWatch-style function logs, in memory and in files."""

from __future__ import annotations

from lambdascope.emulator.logs import read_function_log, stream_file_name

from .conftest import function


def test_stream_file_names_are_safe():
    assert stream_file_name("2026/11/24/[$LATEST]ab12") == "2026-11-24-LATEST-ab12.log"


def test_function_log_reads_like_cloudwatch(make_emulator, tmp_path):
    emu = make_emulator([function("talk", "app.prints")], log_dir=tmp_path)
    first = emu.invoke("talk", b'{"n": 1}', log_type="Tail")  # Tail: returns after REPORT
    emu.invoke("talk", b'{"n": 2}', log_type="Tail")
    lines = read_function_log(tmp_path, "talk")
    assert lines == emu.logs.lines("talk")
    assert lines[0].startswith("INIT_START Runtime Version: python:3.")
    assert lines[1].startswith("INIT_REPORT Init Duration: ")
    assert lines[2] == f"START RequestId: {first.request_id} Version: $LATEST\n"
    assert "hello from print\n" in lines[3:5]  # stdout and the log frames: either order
    assert any("hello from logging 1" in line for line in lines[3:5])
    assert lines[5] == f"END RequestId: {first.request_id}\n"
    assert lines[6].startswith(f"REPORT RequestId: {first.request_id}\tDuration: ")
    assert "Init Duration" in lines[6] and "Init Duration" not in lines[-1]
    assert len(list((tmp_path / "talk").glob("*.log"))) == 1  # one environment, one stream
    assert read_function_log(tmp_path, "nothing") == []
