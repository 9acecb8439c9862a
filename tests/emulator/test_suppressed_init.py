"""Suppressed init: a failed init is retried inside the first invocation (phase "invoke")."""

from __future__ import annotations

import json

from .conftest import function, wait_for


def test_an_init_that_fails_once_is_retried_inside_the_invocation(make_emulator, recording):
    marker = recording.path.parent / "flaky-marker"
    fn = function(
        "flaky",
        "flaky_init.handler",
        recording=recording,
        environment={"FLAKY_MARKER": str(marker)},
        timeout_s=5.0,
    )
    emu = make_emulator([fn])
    result = emu.invoke("flaky", b"{}", log_type="Tail")
    assert result.status_code == 200 and result.function_error is None
    assert json.loads(result.payload)["ok"] is True
    assert marker.exists()

    report = recording.report_for(result.request_id)
    assert report["status"] == "success"
    assert "initDurationMs" not in report["metrics"]  # the retried init is inside durationMs
    init_reports = wait_for(
        lambda: [r for r in recording.platform("platform.initReport") if r["phase"] == "invoke"],
        what="the invoke-phase init report",
    )
    assert init_reports[0]["status"] == "success"
    failed = [r for r in recording.platform("platform.initReport") if r["phase"] == "init"]
    assert failed and failed[0]["status"] == "error"
    starts = [r["phase"] for r in recording.platform("platform.initStart")]
    assert starts == ["init", "invoke"]
    # The CloudWatch-style log says it as Lambda does.
    init_lines = [line for line in emu.logs.lines("flaky") if line.startswith("INIT_REPORT")]
    assert "Phase: init\tStatus: error" in init_lines[0]
    assert init_lines[1].rstrip("\n").endswith("Phase: invoke")
    (env,) = emu.environments("flaky")
    assert env.suppressed_init
    # The environment stays warm: the next invocation runs no init at all.
    again = emu.invoke("flaky", b"{}")
    assert again.function_error is None
    assert len(recording.platform("platform.initStart")) == 2


def test_an_init_that_keeps_failing_fails_the_invocation_once_retried(make_emulator, recording):
    fn = function("broken", "broken.handler", recording=recording, timeout_s=5.0)
    emu = make_emulator([fn])
    result = emu.invoke("broken", b"{}")
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "Runtime.ImportModuleError"
    phases = wait_for(
        lambda: (
            [r["phase"] for r in recording.platform("platform.initReport")]
            if len(recording.platform("platform.initReport")) >= 2
            else None
        ),
        what="two init reports",
    )
    assert phases == ["init", "invoke"]
    report = recording.report_for(result.request_id)
    assert report["status"] == "error" and report["errorType"] == "Runtime.ImportModuleError"
