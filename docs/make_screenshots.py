"""Write docs/screenshots/*.png: the top of the audit bundle (verdict, model, family matrix and the
drawing) of each bundled topology, in Japanese, rendered by Debian's chromium through playwright.

    python docs/make_screenshots.py

The time in the report is fixed (SOURCE_DATE_EPOCH) so that re-running gives the same pictures.
Needs a Japanese font, or the Japanese text renders as boxes: on Debian ``apt-get install fonts-ipafont-gothic``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner
from playwright.sync_api import sync_playwright

from segverify.cli import main as segverify

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
TOPOLOGIES = ("alpha-city", "beta-prime-city", "vendor-city")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ["SOURCE_DATE_EPOCH"] = "1767225600"
    os.chdir(ROOT)  # the report names its inputs as given: relative paths, as in the README
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for name in TOPOLOGIES:
            bundle = Path(tmp) / name
            result = CliRunner().invoke(segverify, ["report", f"topologies/{name}.yaml", "-o", str(bundle),
                                                    "--lang", "ja"])
            if result.exit_code not in (0, 1):
                raise SystemExit(f"{name}: segverify report failed: {result.stderr}")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto((bundle / "index.html").as_uri())
            box = page.locator("#drawing").bounding_box()
            height = int(box["y"] + box["height"] + 16) if box else 2400
            target = OUT / f"{name}-ja.png"
            page.screenshot(path=str(target), full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": height})
            page.close()
            print(target.relative_to(ROOT))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
