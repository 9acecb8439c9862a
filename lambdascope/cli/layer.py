"""``lambdascope layer build --arch x86_64|arm64 --output FILE.zip`` (wired by cli.py).

Writes the Lambda layer: the extension (``extensions/lambdascope`` and its package) and
``python/`` with ``lambdascope_tracing`` and the OpenTelemetry API and SDK, copied from this
interpreter's installed distributions (no network). Everything in it is pure Python, so the
architecture only labels the zip; the bytecode inside is for this interpreter's version, so
build with the Python version of the functions' runtime.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import TextIO

from lambdascope.extension.layer import (
    ARCHITECTURES,
    LayerBuildError,
    build_layer_zip,
    python_distributions,
)

__all__ = ["build"]


def build(
    arch: str,
    output: Path,
    *,
    name: str = "lambdascope",
    python_packages: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Build the layer zip at `output`; 0 and a summary of what was written, else 2 and one
    line naming the problem and its fix."""
    out = out or sys.stdout
    err = err or sys.stderr
    if arch not in ARCHITECTURES:
        print(f"--arch {arch!r} is not a Lambda architecture; use x86_64 or arm64", file=err)
        return 2
    output = Path(output)
    if output.suffix.lower() != ".zip":
        print(f"--output {str(output)!r} should name a .zip file (e.g. layer.zip)", file=err)
        return 2
    try:
        written = build_layer_zip(output, arch, name=name, python_packages=python_packages)
        distributions = python_distributions() if python_packages else []
    except (LayerBuildError, ValueError, OSError) as exc:
        print(f"cannot build the layer: {exc}", file=err)
        return 2
    with zipfile.ZipFile(written) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
    groups: dict[str, int] = {}
    for info in infos:
        parts = info.filename.split("/")
        top = "/".join(parts[:2]) if parts[0] == "python" else parts[0]
        groups[top] = groups.get(top, 0) + 1
    size_kb = written.stat().st_size / 1024
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    print(f"wrote {written} ({size_kb:.0f} KiB, {len(infos)} files, {arch})", file=out)
    print(f"  extensions/{name}  launcher (runs python3 from the runtime)", file=out)
    for top in sorted(groups):
        if not top.startswith("extensions"):
            label = top if top.endswith(".py") else top + "/"
            print(f"  {label}  {groups[top]} files", file=out)
    for dist in distributions:
        print(f"  python: {dist.metadata['Name']} {dist.version}", file=out)
    print(f"  bytecode for Python {py}: build with your functions' runtime version", file=out)
    print(
        "publish: aws lambda publish-layer-version --layer-name lambdascope "
        f"--zip-file fileb://{written} --compatible-architectures {arch}",
        file=out,
    )
    return 0
