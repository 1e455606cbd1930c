"""Debian's Chromium driven through its ChromeDriver by selenium: offline, headless, no browser download.

Shared by the viewer tests and ``docs/screenshots.py``.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from agent.viewer import write_page
from tools.metrics import resvg_render
from tools.svg import SvgDocument, read_svg, to_svg_string

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# no background networking: this machine's network is closed, and a test page must not need one
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--force-device-scale-factor=1")


def missing() -> str | None:
    """Why no browser can be driven here, or None."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (pip install '.[dev]')"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 1000, flags: tuple[str, ...] = ()) -> Iterator:
    """A selenium driver with the network switched off (``flags``: more command-line switches); its
    profile is removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="amodal-chromium-")
    for arg in (*FLAGS, *flags, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                               {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_result(driver, run: Path, zoom: int):
    """Write and open RUN/result.html; its SVG is pinned at (0, 0) at ``zoom`` x its size, so a screenshot
    and resvg's render sample the same pixel grid. Returns the SVG element and the document."""
    from selenium.webdriver.common.by import By

    driver.get(write_page(run).resolve().as_uri())
    svg = driver.find_element(By.CSS_SELECTOR, "#stage > svg")
    doc = read_svg(run / "result.svg")
    driver.execute_script("const s = arguments[0].style; s.position = 'fixed'; s.left = '0px'; s.top = '0px';"
                          "s.zIndex = 10; s.maxHeight = 'none'; s.outline = 'none';"
                          "s.width = arguments[1] + 'px'; s.height = arguments[2] + 'px';",
                          svg, doc.width * zoom, doc.height * zoom)
    return svg, doc


def screenshot(element) -> np.ndarray:
    """(H, W, 3) float RGB of what the browser shows of ``element``."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB"), np.float64) / 255


def resvg_state(doc: SvgDocument, ids: list[str], zoom: int) -> np.ndarray:
    """resvg's render, over white, of the document with only the layers ``ids`` shown."""
    kept = SvgDocument(doc.width, doc.height, [layer for layer in doc.layers if layer.id in ids])
    return resvg_render(to_svg_string(kept), doc.width * zoom, doc.height * zoom, background="#ffffff")[..., :3]


def panel_item(driver, layer_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'#layer-list li[data-id="{layer_id}"]')


def layer_order(driver) -> list[str]:
    """The page's layer groups as they are now in its SVG, back to front."""
    return driver.execute_script("return [...document.querySelectorAll('#stage > svg > g')].map(g => g.id)")
