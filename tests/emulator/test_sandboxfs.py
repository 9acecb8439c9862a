"""Lambda's filesystem view: /opt layers, /var/task, private /tmp, sandbox.localdomain."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

from lambdascope.emulator import Emulator, sandboxfs
from lambdascope.emulator.sandbox_processes import build_environment
from lambdascope.emulator.sandboxfs import (
    IsolationError,
    SandboxView,
    TmpAfterReset,
    hosts_text,
    merge_layers,
    mount_script,
    outermost_under_tmp,
    probe_namespace,
    resolve_isolation,
)

from .conftest import RECORDER_LAYER, function, wait_for

NAMESPACES, WHY_NOT = probe_namespace()


def test_hosts_file_adds_sandbox_names_for_the_environment_address():
    text = hosts_text("127.0.0.1 localhost", "127.77.3.4")
    assert text == "127.0.0.1 localhost\n127.77.3.4\tsandbox.localdomain sandbox\n"


def test_mount_script_is_private_binds_in_order_and_quotes_paths():
    script = mount_script([("/a b", "/opt"), ("/c", "/tmp")], "/var/task")
    lines = script.splitlines()
    assert lines[:2] == ["set -e", "mount --make-rprivate /"]
    assert lines[2:4] == ["mount --rbind '/a b' /opt", "mount --rbind /c /tmp"]
    assert lines[-2:] == ["cd /var/task", 'exec "$@"']


def test_only_the_outermost_paths_below_tmp_are_carried_into_the_private_tmp():
    paths = ["/tmp/ci/.venv", "/tmp/ci", "/tmp/ci/.venv/lib", "/usr/lib", "/tmp", "/tmpfoo"]
    assert outermost_under_tmp(paths) == ["/tmp/ci"]


def test_later_layers_replace_earlier_files_as_in_opt(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    (first / "python").mkdir(parents=True)
    (first / "python" / "m.py").write_text("one")
    (first / "python" / "only_one.py").write_text("1")
    (second / "python").mkdir(parents=True)
    (second / "python" / "m.py").write_text("two")
    merge_layers((first, second), tmp_path / "opt")
    assert (tmp_path / "opt" / "python" / "m.py").read_text() == "two"
    assert (tmp_path / "opt" / "python" / "only_one.py").read_text() == "1"


def test_namespaced_environment_variables_use_lambda_paths(tmp_path):
    fn = function("paths", "app.ok")
    view = SandboxView(True, fn.code_dir, (RECORDER_LAYER,), tmp_path)
    runtime_env, _ = build_environment(fn, "127.0.0.1:9001", "s", base={"TMPDIR": "/x"}, view=view)
    assert runtime_env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert runtime_env["PYTHONPATH"].split(":") == ["/var/task", "/opt/python"]
    assert "TMPDIR" not in runtime_env


def test_unknown_isolation_mode_is_refused():
    with pytest.raises(IsolationError, match="isolation 'chroot'"):
        resolve_isolation("chroot")


def test_where_namespaces_are_impossible_auto_falls_back_and_namespace_fails(monkeypatch, caplog):
    monkeypatch.setattr(sandboxfs, "probe_namespace", lambda: (False, "not root"))
    with pytest.raises(
        IsolationError, match="isolation 'namespace' is not possible here: not root"
    ):
        Emulator([function("x", "app.ok")], isolation="namespace")
    with caplog.at_level("WARNING", logger="lambdascope.emulator.sandboxfs"):
        emu = Emulator([function("x", "app.ok")], isolation="auto")
    assert emu.namespaced is False
    assert "/tmp is shared" in caplog.text and "not root" in caplog.text


needs_namespaces = pytest.mark.skipif(not NAMESPACES, reason=f"no mount namespaces: {WHY_NOT}")


@needs_namespaces
def test_each_environment_has_its_own_tmp_and_sees_layers_under_opt(make_emulator, recording):
    a = function("fs-a", "app.filesystem", recording=recording)
    b = function("fs-b", "app.filesystem", recording=recording)
    emu = make_emulator([a, b], isolation="namespace")
    name = f"x-{uuid.uuid4().hex}"
    first = json.loads(emu.invoke("fs-a", json.dumps({"write": name}).encode()).payload)
    assert first["opt_extensions"] == ["recorder"]
    assert first["cwd"] == first["task_root"] == "/var/task"
    assert first["file"] == "/var/task/app.py"
    assert name in first["tmp"]
    # /tmp survives warm invocations of the same environment...
    assert name in json.loads(emu.invoke("fs-a", b"{}").payload)["tmp"]
    # ...and another environment never sees it, nor does the host.
    other = json.loads(emu.invoke("fs-b", b"{}").payload)
    assert name not in other["tmp"]
    assert not (Path("/tmp") / name).exists()


@needs_namespaces
def test_tmp_survives_the_reset_after_a_timeout_as_in_lambda(make_emulator, recording):
    emu = make_emulator(
        [function("reset", "app.filesystem", recording=recording, timeout_s=1.0)],
        isolation="namespace",
    )
    name = f"cache-{uuid.uuid4().hex}"
    timed_out = emu.invoke("reset", json.dumps({"write": name, "hang": True}).encode())
    assert json.loads(timed_out.payload)["errorType"] == "Sandbox.Timedout"
    # The reset restarts the runtime and extensions (a new init) on the same disk.
    after = emu.invoke("reset", b"{}")
    assert name in json.loads(after.payload)["tmp"]
    assert "initDurationMs" in recording.report_for(after.request_id)["metrics"]
    (env,) = [e for e in emu.environments("reset") if e.state != "dead"]
    tmp_dir = env.view.tmp_dir
    assert tmp_dir is not None
    emu.stop()
    assert not tmp_dir.exists()


@needs_namespaces
def test_sandbox_localdomain_resolves_to_the_environment_address(make_emulator, recording):
    emu = make_emulator(
        [function("dns", "app.filesystem", recording=recording)], isolation="namespace"
    )
    seen = json.loads(emu.invoke("dns", b"{}").payload)
    address = seen["runtime_api"].split(":")[0]
    assert seen["sandbox"] == address
    start = wait_for(
        lambda: [x for x in recording.lines() if x["kind"] == "start"], what="the extension"
    )[0]
    assert start["sandbox"] == address
    # The extension was launched as Lambda launches it: /opt/extensions/<name>, from /opt.
    assert start["argv0"] == "/opt/extensions/recorder"
    assert start["cwd"] == "/opt"


@needs_namespaces
def test_namespaces_leave_no_mounts_or_folders_behind(make_emulator, recording):
    emu = make_emulator(
        [function("tidy", "app.filesystem", recording=recording)], isolation="namespace"
    )
    emu.invoke("tidy", b'{"write": "y"}')
    (env,) = emu.environments("tidy")
    tmp_dir = env.view.tmp_dir
    assert tmp_dir is not None and (tmp_dir / "y").exists()
    emu.stop()
    assert not tmp_dir.exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert "/var/task" not in mounts and str(tmp_dir) not in mounts


def test_isolation_none_keeps_the_real_paths(make_emulator):
    emu = make_emulator([function("plain", "app.filesystem")], isolation="none")
    seen = json.loads(emu.invoke("plain", b"{}").payload)
    assert seen["task_root"] == seen["cwd"] != "/var/task"
    assert seen["opt_extensions"] != ["recorder"]


def test_a_kept_tmp_goes_to_one_successor_which_waits_for_the_reset(tmp_path):

    carry = TmpAfterReset()
    assert carry.take(0.5) is None  # nothing reset: no wait
    carry.begin()
    kept = tmp_path / "kept"
    (kept / "tmp").mkdir(parents=True)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(carry.take(5.0)))
    waiter.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert carry.take(5.0) is None  # a second new environment does not wait for it
    assert time.monotonic() - started < 0.5
    carry.put(kept)
    waiter.join(5.0)
    assert got == [kept]
