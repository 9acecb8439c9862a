from __future__ import annotations

import os
import subprocess
import sys
import time

from lambdascope.extension.runtime_start import runtime_started_at_ms


def _sleeper(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(5)"], env={**os.environ, **env}
    )


def test_the_runtime_is_the_process_with_a_handler_and_this_sandboxs_api() -> None:
    api = f"127.0.0.1:{os.getpid() % 50000 + 10000}"
    extension = _sleeper({"AWS_LAMBDA_RUNTIME_API": api})  # an extension: no _HANDLER
    other = _sleeper({"AWS_LAMBDA_RUNTIME_API": "127.0.0.9:1", "_HANDLER": "app.handler"})
    before = time.time()
    runtime = _sleeper({"AWS_LAMBDA_RUNTIME_API": api, "_HANDLER": "app.handler"})
    try:
        started = runtime_started_at_ms(api)
        assert started is not None
        # /proc keeps start times in 10 ms clock ticks.
        assert before * 1000 - 30 <= started <= time.time() * 1000 + 30
        assert runtime_started_at_ms("127.0.0.1:1") is None  # no runtime of that sandbox
    finally:
        for proc in (extension, other, runtime):
            proc.kill()
            proc.wait(5)
