from __future__ import annotations

import io
import zipfile
from pathlib import Path

from lambdascope.cli.layer import build


def test_build_writes_the_zip_and_says_what_is_in_it(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert build("arm64", tmp_path / "layer.zip", out=out, err=err) == 0
    text = out.getvalue()
    assert f"wrote {tmp_path / 'layer.zip'}" in text and "arm64" in text
    assert "python: opentelemetry-sdk" in text and "python/lambdascope_tracing/" in text
    assert "publish-layer-version" in text and err.getvalue() == ""
    with zipfile.ZipFile(tmp_path / "layer.zip") as archive:
        assert "extensions/lambdascope" in archive.namelist()


def test_bad_arguments_name_the_fix(tmp_path: Path) -> None:
    err = io.StringIO()
    assert build("sparc", tmp_path / "l.zip", out=io.StringIO(), err=err) == 2
    assert "use x86_64 or arm64" in err.getvalue()
    err = io.StringIO()
    assert build("x86_64", tmp_path / "l.tar", out=io.StringIO(), err=err) == 2
    assert "should name a .zip file" in err.getvalue()
    assert not (tmp_path / "l.zip").exists()
