"""The memory limit over a whole environment: cgroup parsing, the kernel's limit (cgroup
mode), the sampled sum with its response-time check (sampling mode); also the init's phase
split (initRuntimeDone) and proactive initialization."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from lambdascope.emulator import Emulator, cli, memory_limit, sandbox_processes
from lambdascope.emulator.config import ConfigError, ConfigFileError
from lambdascope.emulator.memory_limit import (
    CgroupParent,
    MemoryLimitError,
    memory_cgroup_dir,
    oom_kill_count,
    own_cgroup_paths,
    parse_mountinfo,
    resolve_memory_limit,
)

from .conftest import FIXTURES, HANDLERS, Recording, function, wait_for

HUNGRY_LAYER = FIXTURES / "hungry_layer"
CGROUP_PARENT, CGROUP_WHY_NOT = memory_limit.probe_cgroup()
needs_cgroup = pytest.mark.skipif(
    CGROUP_PARENT is None, reason=f"no memory cgroup can be made here: {CGROUP_WHY_NOT}"
)

# --- pure ---------------------------------------------------------------------------------

V1_CGROUP = """9:name=systemd:/
5:devices:/
4:memory:/process_api/e54810dad476d8accac6c76c14c288cc
1:cpu:/
0::/
"""
V1_MOUNTINFO = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2_CGROUP = "0::/user.slice/user-1000.slice/session-3.scope\n"
V2_MOUNTINFO = "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_own_cgroup_paths_read_v1_and_v2_lines():
    assert own_cgroup_paths(V1_CGROUP) == ("/process_api/e54810dad476d8accac6c76c14c288cc", "/")
    assert own_cgroup_paths(V2_CGROUP) == (None, "/user.slice/user-1000.slice/session-3.scope")
    assert own_cgroup_paths("7:cpu,memory:/docker/abc\n") == ("/docker/abc", None)
    assert own_cgroup_paths("") == (None, None)


def test_the_memory_hierarchy_is_found_where_it_is_mounted():
    v1 = memory_cgroup_dir(V1_CGROUP, V1_MOUNTINFO)
    path = "/sys/fs/cgroup/memory/process_api/e54810dad476d8accac6c76c14c288cc"
    assert v1 == CgroupParent(1, Path(path))
    v2 = memory_cgroup_dir(V2_CGROUP, V2_MOUNTINFO)
    assert v2 == CgroupParent(2, Path("/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope"))
    # A container whose own cgroup is what is mounted (the mount's root is not "/").
    container = "40 30 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"
    assert memory_cgroup_dir("4:memory:/docker/abc\n", container) == CgroupParent(
        1, Path("/sys/fs/cgroup/memory")
    )
    assert memory_cgroup_dir("4:memory:/elsewhere\n", container) is None
    # Hybrid without a v1 memory hierarchy mounted: nothing to use.
    assert memory_cgroup_dir(V1_CGROUP, V1_MOUNTINFO.replace("rw,memory", "rw,x")) is None


def test_mountinfo_escapes_are_decoded():
    line = r"35 31 0:32 / /mnt/cg\040root rw - cgroup cgroup rw,memory,nodev"
    (mount,) = parse_mountinfo(line + "\nnot a mount line\n")
    assert mount.mount_point == "/mnt/cg root"
    assert mount.super_options == ("rw", "memory", "nodev")


def test_oom_kills_are_read_from_oom_control_and_memory_events():
    assert oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == 3
    assert oom_kill_count("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n") == 1
    assert oom_kill_count("oom_kill_disable 0\nunder_oom 0\n") == 0


def test_memory_limit_modes_are_checked(monkeypatch, caplog):
    with pytest.raises(MemoryLimitError, match="memory_limit 'rss'"):
        resolve_memory_limit("rss")
    assert resolve_memory_limit("sampling") == "sampling"
    monkeypatch.setattr(memory_limit, "probe_cgroup", lambda: (None, "not root"))
    with pytest.raises(MemoryLimitError, match="'cgroup' is not possible here: not root"):
        Emulator([function("x", "app.ok")], memory_limit="cgroup")
    with caplog.at_level("WARNING", logger="lambdascope.emulator.memory_limit"):
        assert Emulator([function("x", "app.ok")]).memory_limit == "sampling"
    assert "sampling" in caplog.text and "not root" in caplog.text


def test_memory_limit_and_proactive_init_come_from_the_config_file(tmp_path):
    def write(emulator_table: str, function_extra: str = "") -> Path:
        path = tmp_path / "lambdascope.toml"
        path.write_text(
            f"[emulator]\n{emulator_table}\n[[functions]]\nname = 'f'\nhandler = 'app.ok'\n"
            f"code_dir = '{HANDLERS}'\n{function_extra}"
        )
        return path

    emu = cli.build_emulator(write("memory_limit = 'sampling'", "proactive_init = true\n"))
    assert emu.memory_limit == "sampling" and emu.functions["f"].proactive_init is True
    with pytest.raises(ConfigFileError, match="memory_limit 'rss'"):
        cli.build_emulator(write("memory_limit = 'rss'"))
    with pytest.raises(ConfigError, match="proactive_init"):
        cli.build_emulator(write("", "proactive_init = 'yes'\n"))


# --- the kernel's limit -----------------------------------------------------------------------


def _with_layers(fn, *layers: Path, **environment: str):
    return dataclasses.replace(
        fn, layers=fn.layers + layers, environment={**fn.environment, **environment}
    )


def _leftover_cgroups() -> list[str]:
    assert CGROUP_PARENT is not None
    return [p.name for p in CGROUP_PARENT.path.glob(f"lambdascope-{os.getpid()}-*")]


@needs_cgroup
def test_a_one_shot_allocation_above_the_memory_size_is_killed_by_the_kernel(
    make_emulator, recording
):
    emu = make_emulator(
        [function("hog", "app.allocate", recording=recording, timeout_s=5.0)],
        memory_limit="cgroup",
    )
    result = emu.invoke("hog", b'{"mb": 150}')
    assert json.loads(result.payload)["errorType"] == "Runtime.OutOfMemory"
    report = recording.report_for(result.request_id)
    assert report["status"] == "error" and report["errorType"] == "Runtime.OutOfMemory"
    assert report["metrics"]["maxMemoryUsedMB"] == 128
    emu.stop()
    assert _leftover_cgroups() == []


@needs_cgroup
def test_holding_just_under_the_memory_size_succeeds_and_never_reports_more(
    make_emulator, recording
):
    emu = make_emulator(
        [function("hold", "app.allocate", recording=recording, timeout_s=5.0)],
        memory_limit="cgroup",
    )
    first = emu.invoke("hold", b'{"mb": 0}')
    baseline_mb = recording.report_for(first.request_id)["metrics"]["maxMemoryUsedMB"]
    mb = 128 - baseline_mb - 10
    assert mb > 40, f"the sandbox alone uses {baseline_mb} MB"
    result = emu.invoke("hold", json.dumps({"mb": mb, "hold_s": 0.05}).encode())
    assert result.function_error is None, result.payload
    report = recording.report_for(result.request_id)
    assert report["status"] == "success"
    assert mb < report["metrics"]["maxMemoryUsedMB"] <= 128


@needs_cgroup
def test_an_extensions_memory_counts_and_the_runtime_is_the_one_killed(make_emulator, recording):
    shutdown_seen = recording.path.parent / "hungry.out"
    fn = _with_layers(
        function("shared", "app.allocate", recording=recording, timeout_s=5.0),
        HUNGRY_LAYER,
        HUNGRY_MB="60",
        HUNGRY_OUT=str(shutdown_seen),
    )
    emu = make_emulator([fn], memory_limit="cgroup")
    result = emu.invoke("shared", b'{"mb": 80, "hold_s": 0.5}')
    assert json.loads(result.payload)["errorType"] == "Runtime.OutOfMemory"
    report = recording.report_for(result.request_id)
    assert report["errorType"] == "Runtime.OutOfMemory"
    assert report["metrics"]["maxMemoryUsedMB"] == 128
    # The extension lived on: the reset's SHUTDOWN reached it.
    wait_for(shutdown_seen.exists, what="SHUTDOWN at the hungry extension")
    assert shutdown_seen.read_text() == "shutdown"


@needs_cgroup
def test_a_process_left_behind_by_the_handler_dies_with_its_environment(make_emulator):
    emu = make_emulator([function("leaver", "app.detached")], memory_limit="cgroup")
    result = emu.invoke("leaver", b"{}")
    pid = json.loads(result.payload)["pid"]
    emu.stop()
    assert _leftover_cgroups() == []

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        return state in ("Z", "X")

    wait_for(gone, 2.0, "the left-behind process to be killed")


# --- sampling -------------------------------------------------------------------------------


def test_sampling_catches_an_allocation_between_samples_at_the_response(
    make_emulator, recording, monkeypatch
):
    # No sample during the invocation: only the check before the caller is answered is left.
    monkeypatch.setattr(sandbox_processes, "MEMORY_SAMPLE_INTERVAL_S", 30.0)
    emu = make_emulator(
        [function("blip", "app.allocate", recording=recording, timeout_s=5.0)],
        memory_limit="sampling",
    )
    ok = emu.invoke("blip", b'{"mb": 0}')
    assert ok.function_error is None
    assert recording.report_for(ok.request_id)["metrics"]["maxMemoryUsedMB"] <= 128
    result = emu.invoke("blip", b'{"mb": 150}')
    body = json.loads(result.payload)
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert body["errorMessage"].endswith("Runtime exited with error: signal: killed")
    report = recording.report_for(result.request_id)
    assert report["status"] == "error" and report["metrics"]["maxMemoryUsedMB"] == 128


# --- init phases and proactive init ---------------------------------------------------------


def _epoch(event: dict) -> float:
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()


def test_init_runtime_done_is_when_the_runtime_finished_not_the_extensions(
    make_emulator, recording
):
    fn = _with_layers(
        function("split", "app.ok", recording=recording), HUNGRY_LAYER, HUNGRY_INIT_DELAY_S="1.0"
    )
    emu = make_emulator([fn])
    assert emu.invoke("split", b"{}").function_error is None

    def init_events() -> dict[str, dict] | None:
        found = {
            e["type"]: e for e in recording.telemetry() if e["type"].startswith("platform.init")
        }
        return found if "platform.initReport" in found else None

    found = wait_for(init_events, what="platform.initReport")
    start = _epoch(found["platform.initStart"])
    runtime_done = _epoch(found["platform.initRuntimeDone"])
    report = _epoch(found["platform.initReport"])
    duration_s = found["platform.initReport"]["record"]["metrics"]["durationMs"] / 1000
    # The extension sleeps 1 s after registering, while the runtime starts and finishes its
    # init (a few hundred ms): initRuntimeDone comes well before the init ends.
    assert start <= runtime_done <= report - 0.2
    assert report - start >= 1.0 and duration_s >= 1.0
    assert duration_s >= runtime_done - start + 0.2
    order = [
        e["type"]
        for e in recording.telemetry()
        if e["type"] in ("platform.initStart", "platform.initRuntimeDone", "platform.initReport")
    ]
    assert order == ["platform.initStart", "platform.initRuntimeDone", "platform.initReport"]


def test_proactive_init_prepares_one_on_demand_environment_ahead(make_emulator, recording):
    provisioned = Recording(recording.path.parent / "provisioned.jsonl")
    eager = function("eager", "app.ok", recording=recording, proactive_init=True)
    pc = dataclasses.replace(
        function("pc", "app.ok", recording=provisioned), provisioned_concurrency=1
    )
    emu = make_emulator([eager, pc])
    env = wait_for(
        lambda: next((e for e in emu.environments("eager") if e.state == "idle"), None),
        what="the proactively initialised environment",
    )
    assert env.initialization_type == "on-demand" and env.invocations == 0
    report = wait_for(lambda: recording.platform("platform.initReport"), what="its initReport")
    assert report[0]["initializationType"] == "on-demand"

    first = emu.invoke("eager", b"{}")
    assert emu.environments("eager") == [env] and env.invocations == 1
    assert "initDurationMs" in recording.report_for(first.request_id)["metrics"]
    second = emu.invoke("eager", b"{}")
    assert "initDurationMs" not in recording.report_for(second.request_id)["metrics"]
    assert emu.environments("eager") == [env]  # taken: no other one is prepared

    taken = emu.invoke("pc", b"{}")
    assert "initDurationMs" not in provisioned.report_for(taken.request_id)["metrics"]
    (init,) = provisioned.platform("platform.initStart")
    assert init["initializationType"] == "provisioned-concurrency"
