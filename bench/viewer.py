"""Does every consumer of a run draw the same layers? The result page in Chromium, the PSD through
psd-tools and the SVG in Inkscape, each compared with resvg (the renderer our figures use) on the
same layer state; plus the page's size and the cost of writing the page and the exports.

    python bench/viewer.py                    # a fresh 256-px heuristic run of the coffee photo (bench/out/)
    python bench/viewer.py --run RUN_DIR      # any run folder

Needs Debian's chromium, chromium-driver and inkscape (a missing one is reported, not faked).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, load_photo, psnr

sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium, missing, open_result, panel_item, resvg_state, screenshot
from PIL import Image

from agent.cli import main as cli
from agent.viewer import write_page
from tools.export import export, render_layers
from tools.image import decode_png
from tools.metrics import premultiply, resvg_render
from tools.svg import read_svg

ZOOM = 2


def fresh_run(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    photo = out.parent / "coffee-256.png"
    Image.fromarray((load_photo("coffee", 256) * 255).round().astype(np.uint8)).save(photo)
    t = time.perf_counter()
    rc = cli([str(photo), "--planner", "heuristic", "--out", str(out), "--quiet"])
    print(f"run: amodal-agent coffee-256.png --planner heuristic (defaults): rc {rc}, {time.perf_counter() - t:.1f} s")
    return out


def page_figures(run: Path) -> None:
    t = time.perf_counter()
    page = write_page(run)
    seconds = time.perf_counter() - t
    html = page.read_text()
    images = {p for p in run.glob("artifacts/*.png") if f"artifacts/{p.name}" in html}
    svg_kb = (run / "result.svg").stat().st_size / 1024
    print(f"page: result.html {page.stat().st_size / 1024:.0f} KB (result.svg {svg_kb:.0f} KB of it), "
          f"written in {seconds:.2f} s; {len(images)} images it shows, "
          f"{sum(p.stat().st_size for p in images) / 1024:.0f} KB beside it")


def browser_figures(run: Path) -> None:
    if (why := missing()) is not None:
        print(f"chromium: not run ({why})")
        return
    from selenium.webdriver.common.by import By

    rows = []
    with chromium() as driver:
        svg, doc = open_result(driver, run, ZOOM)
        ids = [layer.id for layer in doc.layers]
        rows.append(("all layers", psnr(screenshot(svg), resvg_state(doc, ids, ZOOM))))
        def press(layer_id: str, control: str) -> None:  # the panel is redrawn after each action: find it anew
            panel_item(driver, layer_id).find_element(By.CSS_SELECTOR, control).click()

        for layer_id in ids:
            press(layer_id, 'input[data-action="visible"]')
            shown = [i for i in ids if i != layer_id]
            rows.append((f"{layer_id} hidden", psnr(screenshot(svg), resvg_state(doc, shown, ZOOM))))
            press(layer_id, 'input[data-action="visible"]')
        for layer_id in ids:
            press(layer_id, 'button[data-action="solo"]')
            rows.append((f"{layer_id} solo", psnr(screenshot(svg), resvg_state(doc, [layer_id], ZOOM))))
            press(layer_id, 'button[data-action="solo"]')
        version = driver.capabilities.get("browserVersion")
    print(f"chromium {version} vs resvg, the page's SVG at {ZOOM}x, PSNR dB over the image:")
    for name, value in rows:
        print(f"  {name:<40} {value:6.2f}")
    values = [v for _, v in rows]
    print(f"  {'min / mean':<40} {min(values):6.2f} / {np.mean(values):.2f}  ({len(values)} states)")


def psd_figures(run: Path, scratch: Path) -> None:
    from psd_tools import PSDImage

    t = time.perf_counter()
    written = export(run, psd=scratch / "result.psd", png_dir=scratch / "png")
    seconds = time.perf_counter() - t
    doc = read_svg(run / "result.svg")
    psd = PSDImage.open(scratch / "result.psd")
    ref = resvg_render((run / "result.svg").read_text(), doc.width, doc.height, background="#ffffff")[..., :3]
    composite = np.asarray(psd.composite().convert("RGB"), np.float64) / 255
    merged = np.asarray(psd.topil().convert("RGB"), np.float64) / 255
    names_ok = [layer.name for layer in psd] == [layer.label for layer in doc.layers]
    print(f"export: {len(written)} files ({doc.width}x{doc.height}) in {seconds:.2f} s; PSD "
          f"{(scratch / 'result.psd').stat().st_size / 1024:.0f} KB, {len(list(psd))} layers, names and order "
          f"{'match' if names_ok else 'DIFFER'}")
    print(f"psd-tools vs resvg: composite {psnr(composite, ref):.2f} dB, "
          f"stored merged image {psnr(merged, ref):.2f} dB")


def inkscape_figures(run: Path, scratch: Path) -> None:
    inkscape = shutil.which("inkscape")
    if inkscape is None:
        print("inkscape: not run (not installed)")
        return
    work = scratch / "ink"
    work.mkdir()
    shutil.copy(run / "result.svg", work / "result.svg")
    doc = read_svg(work / "result.svg")
    ids = [layer.id for layer in doc.layers]
    env = {"HOME": str(work), "PATH": "/usr/bin:/bin"}
    version = subprocess.run([inkscape, "--version"], capture_output=True, text=True, env=env).stdout.strip()
    listed = subprocess.run([inkscape, "--query-all", "result.svg"], cwd=work, capture_output=True, text=True,
                            env=env).stdout.splitlines()
    layers = [line.split(",")[0] for line in listed if line.startswith("layer-")]
    subprocess.run([inkscape, "result.svg", "--export-id=" + ";".join(ids), "--export-id-only", "--export-area-page",
                    "--export-type=png"], cwd=work, capture_output=True, env=env, check=True)
    same = "the same ids, in order" if layers == ids else layers
    print(f"{version}: --query-all lists {len(layers)} layers ({same})")
    print("inkscape vs resvg, each layer exported by id, PSNR dB (premultiplied RGBA):")
    for layer, ours in zip(doc.layers, render_layers(doc), strict=True):
        drawn = decode_png(work / f"result_{layer.id}.png", "RGBA").astype(np.float64) / 255
        print(f"  {layer.id:<40} {psnr(premultiply(drawn), premultiply(ours.rgba / 255.0)):6.2f}")


def run_bench(run: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if run is None:
            run = ROOT / "bench" / "out" / "viewer-run"
            shutil.rmtree(run, ignore_errors=True)
            fresh_run(run)
        page_figures(run)
        browser_figures(run)
        psd_figures(run, scratch)
        inkscape_figures(run, scratch)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a run folder [default: a fresh 256-px heuristic run]")
    run_bench(parser.parse_args().run)
