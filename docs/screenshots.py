"""Screenshots of the result page for the README: ``python docs/screenshots.py`` (needs the browser
the viewer tests use). Writes docs/viewer-layers.png and docs/viewer-trace.png from the recorded example."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium, missing  # noqa: E402

from agent.viewer import write_page  # noqa: E402

EXAMPLE = ROOT / "traces" / "coffee-scripted"


def _save(driver, name: str) -> None:
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    out = ROOT / "docs" / name
    image.save(out, optimize=True)
    print(out, f"{out.stat().st_size // 1024} KB")


def main() -> int:
    if (why := missing()) is not None:
        print(f"screenshots: {why}", file=sys.stderr)
        return 1
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with chromium(1100, 720) as driver:
        driver.get(write_page(EXAMPLE).as_uri())
        svg = driver.find_element(By.CSS_SELECTOR, "#stage > svg")
        # select the cup by clicking on it (its rim, left of centre) and hide the spoon
        ActionChains(driver).move_to_element_with_offset(svg, -int(svg.rect["width"] * 0.12),
                                                         -int(svg.rect["height"] * 0.38)).click().perform()
        driver.find_element(By.CSS_SELECTOR, 'li[data-id="layer-02-spoon"] input[data-action="visible"]').click()
        _save(driver, "viewer-layers.png")
        driver.execute_script("document.querySelector('#turns .turn').scrollIntoView()")
        _save(driver, "viewer-trace.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
