"""Writes the HTML report of a canned fleet and the picture of it in docs/images/report.png.

    PYTHONPATH=. python docs/report_image.py [--keep DIR]

The fleet is the analyzer tests' (tests/analyzers/viewdata.py): timeouts, out-of-memory kills,
cold starts, throttles, a memory leak and an over-provisioned function, fed through the real
collector into an embedded store. The picture is the top of the page at 1280 x 1600, taken by
a headless Chromium (``apt-get install chromium``); without one, only the report is written.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lambdascope.analyzers.report import write_html_report  # noqa: E402
from lambdascope.analyzers.window import Window  # noqa: E402
from tests.analyzers.fleetdata import NOW  # noqa: E402
from tests.analyzers.storefixtures import TestStore  # noqa: E402
from tests.analyzers.viewdata import write_report_fleet  # noqa: E402

IMAGE = ROOT / "docs" / "images" / "report.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the report here and keep it")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lambdascope-report-image-"))
    try:
        (workdir / "store").mkdir()
        store = TestStore(str(workdir / "store"), "report_image")
        write_report_fleet(store)
        out = args.keep or workdir
        out.mkdir(parents=True, exist_ok=True)
        report = write_html_report(
            store.reader,
            out / "report.html",
            Window.ending(NOW, timedelta(hours=1)),
            progress=lambda step: print(f"  {step}"),
        )
        store.store.close()
        print(f"report: {report} ({report.stat().st_size:,} bytes)")
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            print("no chromium on PATH: no picture taken", file=sys.stderr)
            return 1
        subprocess.run(
            [
                chromium,
                *("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"),
                "--virtual-time-budget=5000",
                f"--screenshot={IMAGE}",
                "--window-size=1280,1600",
                report.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        print(f"picture: {IMAGE}")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
