"""lambdascope_tracing runs inside users' functions: it imports no lambdascope package and
keeps the cold start lean (no http.client, ssl or email)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"lambdascope", "collector", "extension", "analyzers", "tui", "emulator"}
HEAVY = {"http.client", "ssl", "email", "urllib.request", "requests", "grpc", "google.protobuf"}


def test_the_helper_and_its_sdk_set_up_load_no_lambdascope_package_and_nothing_heavy() -> None:
    script = (
        "import sys, json\n"
        "import lambdascope_tracing\n"
        "lambdascope_tracing.instrument(lambda event, context: None)\n"
        "assert lambdascope_tracing._created_provider is not None\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert not {m for m in loaded if m.split(".")[0] in FIRST_PARTY}
    assert not loaded & HEAVY, sorted(loaded & HEAVY)
