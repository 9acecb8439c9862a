"""Package boundaries and start-up cost, checked in fresh interpreters (as harlequin does).

The extension starts in every Lambda sandbox, so it may import only the standard library; the
CLI must not load the embedded ClickHouse engine (about 1 s and 280 MB) for commands that do
not use it; the analyzers and the TUI read through the query interface only.
"""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import lambdascope.extension

ROOT = Path(__file__).resolve().parent.parent


def _modules_after_import(*modules: str) -> set[str]:
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def _third_party(modules: set[str]) -> set[str]:
    first_party = {"lambdascope"}
    tops = {m.split(".")[0] for m in modules}
    return {
        m
        for m in tops
        if m not in sys.stdlib_module_names and m not in first_party and not m.startswith("_")
    }


def test_extension_imports_only_the_standard_library() -> None:
    names = [
        f"lambdascope.extension.{m.name}"
        for m in pkgutil.iter_modules(lambdascope.extension.__path__)
        if m.name != "__main__"  # importing it runs the agent
    ]
    assert names, "the extension package has no modules"
    loaded = _modules_after_import(*names)
    assert _third_party(loaded) == set()
    others = {m for m in loaded if m.startswith("lambdascope.")} - set(names)
    assert others == {"lambdascope.extension"}


def test_cli_start_does_not_load_the_store_or_the_ui() -> None:
    loaded = _modules_after_import("lambdascope.cli")
    heavy = {"chdb", "clickhouse_connect", "textual", "plotly", "awslambdaric"}
    assert not heavy & {m.split(".")[0] for m in loaded}


def test_readers_never_load_the_embedded_engine() -> None:
    loaded = _modules_after_import("lambdascope.analyzers", "lambdascope.tui.app")
    assert not {"chdb", "clickhouse_connect"} & {m.split(".")[0] for m in loaded}
    assert not {
        m for m in loaded if m.startswith(("lambdascope.collector", "lambdascope.emulator"))
    }


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    assert path, f"{name} is part of the test extra: pip install -e '.[test]'"
    return path


def test_ruff_finds_nothing() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([_tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
