"""Exports: the layered PSD read back by psd-tools, full-size PNG layers, and Inkscape's view of the SVG."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.cli import main
from tools.export import PNG_DIR, PSD_NAME, export, parse_formats, render_layers
from tools.image import decode_png, psnr
from tools.metrics import premultiply, resvg_render
from tools.svg import SvgDocument, SvgLayer, read_svg, write_svg
from tools.vectorize.pathset import PathSet

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "coffee-scripted"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    out = tmp_path / "coffee"
    shutil.copytree(EXAMPLE, out)
    return out


def _over_white(svg_text: str, w: int, h: int) -> np.ndarray:
    return resvg_render(svg_text, w, h, background="#ffffff")[..., :3]


def _rgb(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), np.float64) / 255


def test_psd_reads_back_with_layers_names_order_and_composite(run_dir, tmp_path):
    from psd_tools import PSDImage

    out = tmp_path / "coffee.psd"
    export(run_dir, psd=out)
    doc = read_svg(run_dir / "result.svg")
    psd = PSDImage.open(out)
    assert (psd.width, psd.height) == (doc.width, doc.height)
    layers = list(psd)  # psd-tools lists layers bottom first
    assert [layer.name for layer in layers] == [layer.label for layer in doc.layers]
    assert all(layer.kind == "pixel" and layer.visible for layer in layers)
    for layer, rendered in zip(layers, render_layers(doc), strict=True):
        alpha = rendered.rgba[..., 3]
        ys, xs = np.nonzero(alpha)
        assert layer.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), layer.name
        assert np.array_equal(np.asarray(layer.topil()), rendered.rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    reference = _over_white((run_dir / "result.svg").read_text(), doc.width, doc.height)
    assert psnr(_rgb(psd.composite()), reference) >= 30
    assert psnr(_rgb(psd.topil()), reference) >= 30, "the merged image other viewers show"


def test_png_layers_are_rendered_from_the_vectors_at_the_svg_size(run_dir, tmp_path):
    doc = read_svg(run_dir / "result.svg")
    big = SvgDocument(doc.width * 3, doc.height * 3,  # the same drawing at 3x: as a run worked at --size shows it
                      [SvgLayer(layer.id, layer.label, replace(layer.paths, points=layer.paths.points * 3))
                       for layer in doc.layers])
    svg = write_svg(big, tmp_path / "big.svg")
    written = export(svg, png_dir=tmp_path / "png")
    assert [p.name for p in written] == ["00-background.png", "01-saucer.png", "02-spoon.png", "03-cup.png"]
    stack = np.ones((big.height, big.width, 3))
    for path in written:
        rgba = decode_png(path, "RGBA").astype(np.float64) / 255
        assert rgba.shape == (big.height, big.width, 4)
        stack = rgba[..., :3] * rgba[..., 3:] + stack * (1 - rgba[..., 3:])
    assert psnr(stack, _over_white(svg.read_text(), big.width, big.height)) >= 40
    cup = decode_png(written[3], "RGBA")
    assert cup[..., 3].mean() < 0.4 * 255 and cup[..., 3].max() == 255, "a layer alone, not the composite"


def test_export_names_empty_and_unicode_layers(tmp_path):
    from psd_tools import PSDImage

    square = torch.tensor([[[2.0, 2], [8, 2], [14, 2], [14, 2], [14, 8], [14, 14], [14, 14], [8, 14], [2, 14],
                            [2, 14], [2, 8], [2, 2]]])
    doc = SvgDocument(16, 16, [SvgLayer("layer-00-background", "background", PathSet.empty()),
                               SvgLayer("layer-01-tasse-a-cafe", "tasse à café ☕", PathSet.from_uniform(
                                   square, torch.tensor([[0.8, 0.1, 0.1, 1.0]])))])
    svg = write_svg(doc, tmp_path / "u.svg")
    export(svg, psd=tmp_path / "u.psd")
    psd = PSDImage.open(tmp_path / "u.psd")
    assert [layer.name for layer in psd] == ["background", "tasse à café ☕"]
    assert psd[1].bbox == (2, 2, 14, 14)


def test_export_command(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--quiet"]) == 0
    assert (run_dir / PSD_NAME).exists() and len(list((run_dir / PNG_DIR).glob("*.png"))) == 4
    assert main(["export", str(run_dir / "result.svg"), "--png-dir", str(tmp_path / "p")]) == 0
    assert len(capsys.readouterr().out.split()) == 4
    assert main(["export", str(tmp_path / "nothing")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--psd", str(tmp_path / "x.png")]) == 2
    assert main(["photo.png", "--export", "psd,svg"]) == 2
    assert "choose from psd, png" in capsys.readouterr().err
    assert parse_formats(" PSD, png,psd ") == ["psd", "png"]


@pytest.mark.slow
def test_run_with_export_writes_full_size_layers_and_the_page(tmp_path):
    from PIL import Image

    photo = np.zeros((64, 96, 3), np.uint8)
    photo[:] = (60, 120, 70)
    photo[12:44, 14:54] = (210, 60, 50)
    photo[28:58, 50:86] = (40, 70, 200)
    Image.fromarray(photo).save(tmp_path / "shapes.png")
    out = tmp_path / "run"
    rc = main([str(tmp_path / "shapes.png"), "--planner", "heuristic", "--max-layers", "2", "--size", "48",
               "--paths", "32", "--iters", "30", "--export", "psd,png", "--out", str(out), "--quiet"])
    assert rc == 0
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    pngs = sorted((out / PNG_DIR).glob("*.png"))
    assert manifest["exports"] == [PSD_NAME, *(f"{PNG_DIR}/{p.name}" for p in pngs)]
    assert decode_png(sorted((out / "layers").glob("*.png"))[0]).shape[:2] == (32, 48), "worked at --size 48"
    assert all(decode_png(p).shape[:2] == (64, 96) for p in pngs), "exported at the photo's size"
    assert "export" in manifest["timings_s"] and (out / "result.html").exists()


# ------------------------------------------------------------------------------------- Inkscape

INKSCAPE = shutil.which("inkscape")
needs_inkscape = pytest.mark.skipif(INKSCAPE is None, reason="inkscape is not installed (apt-get install inkscape)")


def _inkscape(*args: str, cwd: Path) -> str:
    done = subprocess.run([INKSCAPE, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"HOME": str(cwd), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_inkscape
def test_inkscape_lists_one_layer_per_object(run_dir):
    doc = read_svg(run_dir / "result.svg")
    ids = [layer.id for layer in doc.layers]
    listed = [line.split(",")[0] for line in _inkscape("--query-all", "result.svg", cwd=run_dir).splitlines()]
    assert [i for i in listed if i.startswith("layer-")] == ids
    # Inkscape's own save keeps each group as a named layer
    _inkscape("result.svg", "--export-type=svg", "--export-filename=inkscape.svg", cwd=run_dir)
    ns = {"svg": "http://www.w3.org/2000/svg", "inkscape": "http://www.inkscape.org/namespaces/inkscape"}
    root = ET.parse(run_dir / "inkscape.svg").getroot()
    ink = "{" + ns["inkscape"] + "}"
    saved = [(g.get("id"), g.get(ink + "label")) for g in root.findall("svg:g", ns)
             if g.get(ink + "groupmode") == "layer"]
    assert saved == [(layer.id, layer.label) for layer in doc.layers]
    # and draws each layer by id as resvg does
    _inkscape("result.svg", "--export-id=" + ";".join(ids), "--export-id-only", "--export-area-page",
              "--export-type=png", cwd=run_dir)
    for layer, rendered in zip(doc.layers, render_layers(doc), strict=True):
        drawn = decode_png(run_dir / f"result_{layer.id}.png", "RGBA").astype(np.float64) / 255
        ours = rendered.rgba.astype(np.float64) / 255
        assert psnr(premultiply(drawn), premultiply(ours)) >= 30, layer.id

