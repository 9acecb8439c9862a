"""What ``pip install lambdascope`` puts into a user's environment: one import name (and the
in-function tracing helper's own specific name), with every part under it, and modules small
enough to read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdascope import __version__

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("collector", "analyzers", "tui", "extension", "emulator")
TOP_LEVEL_NAMES = {"lambdascope", "lambdascope_tracing"}
MAX_MODULE_LINES = 800


def _copy_checkout(destination: Path) -> Path:
    """The files a fresh clone has (tracked and new, not ignored), symlinks kept as links: the
    build must not write build/ or egg-info into the working checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        target = destination / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkout = _copy_checkout(tmp_path_factory.mktemp("checkout"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            *("-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(out), str(checkout)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("lambdascope-*.whl")
    return built


def _top_level(names: list[str]) -> set[str]:
    return {name.split("/")[0] for name in names if ".dist-info/" not in name}


def test_the_wheel_installs_one_name_with_every_part_under_it(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level_txt = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        declared = set(archive.read(top_level_txt).decode().split())
        entry_points = archive.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    assert _top_level(names) == TOP_LEVEL_NAMES
    assert declared == TOP_LEVEL_NAMES
    for part in PARTS:
        in_checkout = {
            f"lambdascope/{p.relative_to(ROOT).as_posix()}"
            for p in (ROOT / part).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        shipped = {n for n in names if n.startswith(f"lambdascope/{part}/") and n.endswith(".py")}
        assert shipped == in_checkout, part
    assert "lambdascope = lambdascope.cli:main" in entry_points
    # Files the parts read at run time travel with them.
    for data in (
        "lambdascope/analyzers/alerts/default_rules.yaml",
        "lambdascope/cli/demo_fleet/checkout.py",
    ):
        assert data in names, data
    assert any(n.startswith("lambdascope/tui/") and n.endswith(".tcss") for n in names)
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the wheel installed. Its dependencies come from the
    test environment's site-packages (added after the fresh one's own, so the wheel's copy of
    lambdascope is the one imported), which keeps the test off the network."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site_packages / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield venv


def _run(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=venv,  # not the checkout: only what was installed is importable
    )


def test_an_installed_wheel_exposes_only_lambdascope(installed: Path) -> None:
    python = str(installed / "bin" / "python")
    imported = _run(
        installed,
        python,
        "-c",
        "import lambdascope.collector, lambdascope.analyzers, lambdascope.tui, "
        "lambdascope.emulator, lambdascope.extension, lambdascope.query\n"
        "print(lambdascope.collector.__file__)",
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith(str(installed))
    for generic in PARTS:
        missing = _run(installed, python, "-c", f"import {generic}")
        assert "ModuleNotFoundError" in missing.stderr, generic
    site_packages = next((installed / "lib").glob("python3*/site-packages"))
    installed_names = {p.name for p in site_packages.iterdir() if p.name.startswith("lambdascope")}
    assert installed_names == TOP_LEVEL_NAMES | {f"lambdascope-{__version__}.dist-info"}


def test_the_installed_command_starts(installed: Path) -> None:
    result = _run(installed, str(installed / "bin" / "lambdascope"), "--help")
    assert result.returncode == 0, result.stderr
    assert "collector" in result.stdout and "demo" in result.stdout


def _shipped_modules() -> Iterator[Path]:
    for top in ("lambdascope", "lambdascope_tracing", *PARTS):
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" not in path.parts and not (
                top == "lambdascope" and path.relative_to(ROOT / top).parts[0] in PARTS
            ):
                yield path


def test_no_shipped_module_is_too_big_to_hold_in_ones_head() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in _shipped_modules()
    }
    assert len(sizes) > 100
    too_big = {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert too_big == {}, f"split these along their seams (over {MAX_MODULE_LINES} lines)"


def test_the_checkout_links_every_part_into_the_one_package() -> None:
    for part in PARTS:
        link = ROOT / "lambdascope" / part
        assert link.is_symlink() and link.resolve() == ROOT / part, part


def test_code_imports_the_parts_by_their_installed_names() -> None:
    """From the checkout the top-level folders are importable under their bare names too; a
    module imported that way would be a second copy, so nothing may do it."""
    bare = tuple(f"{prefix} {part}" for part in PARTS for prefix in ("import", "from"))
    offenders = []
    for top in ("lambdascope", "lambdascope_tracing", "tests", "bench", *PARTS):
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" in path.parts or (
                top == "lambdascope" and path.relative_to(ROOT / top).parts[0] in PARTS
            ):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                stripped = line.strip()
                if stripped.startswith(bare) and stripped.split()[1].split(".")[0] in PARTS:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    # The extension's launcher and its sandbox tests import it as Lambda does, from the layer.
    allowed = ("extension/layer.py:", "tests/extension/")
    assert [o for o in offenders if not o.startswith(allowed)] == []
