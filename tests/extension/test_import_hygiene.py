"""The extension runs in every sandbox: standard library only, and a lean start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = {
    "http.client",
    "http.server",
    "urllib.request",
    "logging",
    "uuid",
    "typing",
    "dataclasses",
    "email",
    "ssl",
    "gzip",
    "zlib",
    "platform",
    "asyncio",
    "subprocess",
}


def _modules_after(code: str) -> set[str]:
    script = (
        f"import sys, json; sys.path.insert(0, {str(REPO_ROOT)!r}); "
        f"before = set(sys.modules); {code}; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    output = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output))


def test_start_up_path_imports_no_heavy_modules() -> None:
    loaded = _modules_after(
        "import extension.agent, extension.listener, extension.lambda_api, extension.httpio"
    )
    assert not loaded & HEAVY, sorted(loaded & HEAVY)


def test_every_module_uses_the_standard_library_only() -> None:
    modules = [p.stem for p in (REPO_ROOT / "extension").glob("*.py") if p.stem != "__main__"]
    loaded = _modules_after("; ".join(f"import extension.{m}" for m in modules))
    stdlib = set(sys.stdlib_module_names)
    third_party = {
        m for m in loaded if m.split(".")[0] not in stdlib and m.split(".")[0] != "extension"
    }
    assert third_party == set()
