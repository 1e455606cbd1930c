"""SVG writing in the contract's exact form, and reading it (and edited variants) back."""

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import resvg_py
import torch
from PIL import Image, ImageColor

from tools.metrics import premultiply, resvg_render
from tools.svg import (
    INKSCAPE_NS,
    SVG_NS,
    SvgDocument,
    SvgLayer,
    layer_id,
    parse_svg,
    read_svg,
    to_svg_string,
    write_svg,
)
from tools.svg_paint import parse_color
from tools.vectorize.geometry import unit_circle
from tools.vectorize.pathset import PathSet
from tools.vectorize.scenes import random_blobs


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Kept here so these tests do not follow where the project's metric helpers live."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def two_layer_doc() -> SvgDocument:
    bg_pts, bg_cols = random_blobs(30, 48, 64, radius=(8, 30), seed=1)
    cup_pts, cup_cols = random_blobs(12, 48, 64, radius=(2, 10), seed=2)
    return SvgDocument(64, 48, [
        SvgLayer(layer_id(0, "background"), "background", PathSet.from_uniform(bg_pts, bg_cols)),
        SvgLayer(layer_id(1, 'Cup & "saucer"'), 'Cup & "saucer"', PathSet.from_uniform(cup_pts, cup_cols)),
    ])


def test_written_svg_has_the_contract_form():
    svg = to_svg_string(two_layer_doc())
    root = ET.fromstring(svg)
    assert root.tag == f"{{{SVG_NS}}}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("64", "48", "0 0 64 48")
    assert f'xmlns:inkscape="{INKSCAPE_NS}"' in svg
    groups = root.findall(f"{{{SVG_NS}}}g")
    assert [g.get("id") for g in groups] == ["layer-00-background", "layer-01-cup-saucer"]
    assert [g.get(f"{{{INKSCAPE_NS}}}groupmode") for g in groups] == ["layer", "layer"]
    assert [g.get(f"{{{INKSCAPE_NS}}}label") for g in groups] == ["background", 'Cup & "saucer"']
    paths = groups[1].findall(f"{{{SVG_NS}}}path")
    assert len(paths) == 12
    for p in paths:
        assert re.fullmatch(r"#[0-9a-f]{6}", p.get("fill"))
        assert p.get("fill-rule") == "nonzero"
        assert 0 <= float(p.get("fill-opacity")) <= 1
        d = p.get("d")
        assert re.fullmatch(r"M[-\d.]+,[-\d.]+C([-\d.]+,[-\d.]+ ?){12}Z", d), d
        assert all(len(n.split(".")[1]) <= 2 for n in re.findall(r"-?\d+\.\d+", d))


def test_round_trip_is_lossless_at_written_precision():
    doc = two_layer_doc()
    svg = to_svg_string(doc)
    back = parse_svg(svg)
    assert to_svg_string(back) == svg
    assert [layer.label for layer in back.layers] == ["background", 'Cup & "saucer"']
    orig = doc.layers[1].paths
    got = back.layers[1].paths
    assert torch.equal(got.points, torch.round(orig.points.double() * 100) / 100)
    assert torch.equal(got.colors[:, :3], torch.round(orig.colors[:, :3].double() * 255) / 255)
    assert torch.allclose(got.colors[:, 3], orig.colors[:, 3].double(), atol=5e-4)
    assert back.warnings == []


def test_written_file_renders_the_same_in_resvg_and_internally(tmp_path):
    doc = two_layer_doc()
    out = write_svg(doc, tmp_path / "sub" / "result.svg")
    assert out.exists() and not list(out.parent.glob(".*tmp"))
    back = read_svg(out)
    ours = back.render(background=torch.ones(3)).image.double().numpy()
    ref = premultiply(resvg_render(out.read_text(), background="#ffffff"))
    assert psnr(ours, ref) >= 40


def gradient_doc() -> SvgDocument:
    """Two layers of paths filled with linear gradients (a few left flat)."""
    from tools.vectorize.gradient import extend

    layers = []
    for i, (count, seed) in enumerate(((20, 3), (8, 4))):
        pts, cols = random_blobs(count, 48, 64, radius=(4, 20), seed=seed)
        rows = extend(cols)
        gen = torch.Generator().manual_seed(seed)
        rows[2:, 4:] = torch.rand(count - 2, 7, generator=gen)  # the first two stay flat
        layers.append(SvgLayer(layer_id(i, f"layer {i}"), f"layer {i}", PathSet.from_uniform(pts, rows)))
    return SvgDocument(64, 48, layers)


def test_gradient_fills_round_trip_and_render_as_resvg_renders_them():
    doc = gradient_doc()
    svg = to_svg_string(doc)
    assert svg.count("<linearGradient ") == 18 + 6
    assert len(re.findall(r'fill="#[0-9a-f]{6}"', svg)) == 4
    back = parse_svg(svg)
    assert back.warnings == [] and to_svg_string(back) == svg
    ours = back.render(background=torch.ones(3)).image.double().numpy()
    ref = premultiply(resvg_render(svg, background="#ffffff"))
    assert psnr(ours, ref) >= 40
    flat = replace(back.layers[1].paths, gradients=None)  # the gradients are really drawn
    assert not torch.allclose(flat.render(48, 64).image, back.layers[1].paths.render(48, 64).image, atol=0.05)


def test_reads_linear_gradients_the_way_editors_write_them():
    """Stops inherited through href, bounding-box units by default, a gradientTransform, a group's
    unequal scaling, stops not at 0 and 1: each changes where the colours fall."""
    svg = f"""<svg xmlns="{SVG_NS}" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="48">
      <defs>
        <linearGradient id="stops"><stop offset="0.2" style="stop-color:#d02020"/>
          <stop offset="0.7" stop-color="#2040e0"/></linearGradient>
        <linearGradient id="box" xlink:href="#stops" x2="0.3" y2="1"/>
        <linearGradient id="user" xlink:href="#stops" gradientUnits="userSpaceOnUse" x1="4" y1="4" x2="30" y2="10"
          gradientTransform="rotate(25 16 8)"/>
        <linearGradient id="three"><stop offset="0" stop-color="#000"/><stop offset="0.5" stop-color="#fff"/>
          <stop offset="1" stop-color="#0f0"/></linearGradient>
        <radialGradient id="round"><stop offset="0" stop-color="#000"/></radialGradient>
      </defs>
      <rect x="2" y="3" width="30" height="20" fill="url(#box)"/>
      <g transform="translate(20 14) scale(1.6 0.9)"><ellipse cx="14" cy="12" rx="12" ry="9" fill="url(#user)"/>
        <rect x="0" y="24" width="20" height="8" fill="url('#box')"/></g>
      <rect x="40" y="2" width="20" height="10" fill="url(#three)"/>
      <rect x="40" y="30" width="20" height="10" fill="url(#round)"/>
    </svg>"""
    doc = parse_svg(svg)
    assert doc.all_paths().num_paths == 4 and doc.all_paths().gradients is not None
    assert any("3 stops" in w for w in doc.warnings) and any("radialGradient" in w for w in doc.warnings)
    ours = doc.render(background=torch.ones(3)).image.double().numpy()[..., :3]
    ref = resvg_render(svg, background="#ffffff")[..., :3]
    ref[28:, 38:] = ours[28:, 38:]  # the radial one is left out on our side
    ref[:14, 38:] = ours[:14, 38:]  # the three-stop one is drawn with two
    assert psnr(ours, ref) >= 35


def test_reads_what_an_editor_makes_of_the_file():
    # the same red square and blue ring, written the way editors do: relative commands, lines,
    # style attributes, transforms on groups, basic shapes and a path with a hole
    edited = f"""<svg xmlns="{SVG_NS}" xmlns:inkscape="{INKSCAPE_NS}" width="40px" height="30" viewBox="0 0 40 30">
      <g id="layer-00-square" inkscape:groupmode="layer" inkscape:label="square" transform="translate(2,3)">
        <g transform="scale(2)"><path style="fill:#ff0000;fill-opacity:0.5" d="m 2,2 h 4 v 4 h -4 z"/></g>
      </g>
      <g inkscape:groupmode="layer" inkscape:label="ring">
        <path fill="rgb(0,0,255)" fill-rule="evenodd" d="M30 15 A1 1 0 0 0 30 15 L 30 15 Z"/>
        <circle cx="28" cy="15" r="6" fill="blue"/>
      </g>
      <rect x="0" y="0" width="3" height="3" fill="#0f0"/>
    </svg>"""
    doc = parse_svg(edited)
    assert (doc.width, doc.height) == (40, 30)
    assert [layer.label for layer in doc.layers] == ["square", "ring", "unlayered"]
    sq = doc.layers[0].paths
    assert sq.num_paths == 1
    corners = sq.points[::3]
    assert torch.allclose(corners, torch.tensor([[6.0, 7], [14, 7], [14, 15], [6, 15]], dtype=torch.float64))
    assert sq.colors[0].tolist() == [1.0, 0.0, 0.0, 0.5]
    assert doc.warnings == []  # the arc from a point to itself is nothing (SVG 9.5), not a "straight segment"
    img = doc.render().image
    assert img[10, 10].tolist() == pytest.approx([0.5, 0, 0, 0.5], abs=1e-5)
    assert img[15, 28, 2] == pytest.approx(1.0, abs=1e-5)
    assert img[1, 1, 1] == pytest.approx(1.0, abs=1e-5)


def test_compound_path_with_hole_round_trips():
    outer = unit_circle(4) * 10 + 16
    inner = unit_circle(4).flip(0) * 4 + 16
    ps = PathSet(torch.cat([outer, inner]), torch.tensor([4, 4]), torch.tensor([0, 0]),
                 torch.tensor([[0.0, 0.5, 1.0, 1.0]], dtype=torch.float64), torch.tensor([False]))
    svg = to_svg_string(SvgDocument(32, 32, [SvgLayer("layer-00-ring", "ring", ps)]))
    assert svg.count("<path") == 1 and svg.count("M") == 2
    back = parse_svg(svg)
    assert to_svg_string(back) == svg
    img = back.render().image
    assert img[16, 16, 3] == 0 and img[16, 9, 3] == pytest.approx(1.0, abs=1e-5)
    ours = img.double().numpy()
    assert psnr(ours, premultiply(resvg_render(svg))) >= 40


@pytest.mark.parametrize("text,message", [
    ("<svg", "well-formed"),
    ("<html xmlns='http://www.w3.org/1999/xhtml'/>", "not an SVG"),
    (f"<svg xmlns='{SVG_NS}'/>", "width/height"),
    (f"<svg xmlns='{SVG_NS}' width='4' height='4'><path d='M 1' fill='red'/></svg>", "malformed"),
    (f"<svg xmlns='{SVG_NS}' width='4' height='4'><path d='M1 1L2 2' fill='hotpink2'/></svg>", "colour"),
    (f"<svg xmlns='{SVG_NS}' width='4' height='4'><path d='M1 1L2 2' fill='#12345'/></svg>", "colour"),
    (f"<svg xmlns='{SVG_NS}' width='50%' height='4'/>", "width/height"),
    (f"<svg xmlns='{SVG_NS}' width='4' height='4'><path d='M1 1L2 2' opacity='half'/></svg>", "opacity"),
    (f"<svg xmlns='{SVG_NS}' width='4' height='4'><g id='g'><use href='#g'/></g></svg>", "refers to itself"),
])
def test_bad_svg_raises_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_svg(text)


def test_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_svg(tmp_path / "nope.svg")


def test_empty_document_renders_background():
    svg = to_svg_string(SvgDocument(5, 4, []))
    doc = parse_svg(svg)
    assert doc.layers == [] and (doc.width, doc.height) == (5, 4)
    img = doc.render(background=torch.tensor([0.0, 1.0, 0.0])).image
    assert np.allclose(img.numpy(), [0, 1, 0, 1])


# ------------------------------------------------------------------------- files made by editors

DRAWING = Path(__file__).parent / "data" / "inkscape-drawing.svg"
PX_PER_MM = 96 / 25.4


def _resvg_at_96_dpi(svg: str, width: int, height: int) -> np.ndarray:
    """resvg's own reading of mm sizes; ``tools.metrics.resvg_render`` leaves resvg_py's dpi at 0, where
    a size in mm is refused."""
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg, dpi=96, width=width, height=height, background="#ffffff"))
    return premultiply(np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.float64) / 255)


def _sample(outline: torch.Tensor, steps: int = 64) -> np.ndarray:
    """Points along a closed cubic outline (3K, 2), to check the curve itself, not its control points."""
    pts = outline.numpy()
    k = len(pts) // 3
    t = np.linspace(0, 1, steps)[:, None]
    out = []
    for i in range(k):
        p0, p1, p2, p3 = pts[3 * i], pts[3 * i + 1], pts[3 * i + 2], pts[(3 * i + 3) % len(pts)]
        out.append((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3)
    return np.concatenate(out)


def test_reads_a_drawing_saved_by_inkscape():
    doc = read_svg(DRAWING)
    assert (doc.width, doc.height) == (227, 151)  # 60 x 40 mm at 96 dpi is 226.77 x 151.18 px
    assert any("rounded to whole pixels" in w for w in doc.warnings)
    assert [(layer.id, layer.label) for layer in doc.layers] == [("layer1", "Layer 1")]
    ps = doc.layers[0].paths
    outlines = ps.outlines()
    assert ps.num_paths == 5  # half disc, rect, circle, the <use> copy of the leaf, square with a hole

    def mm(x: float, y: float) -> np.ndarray:  # the layer's translate(2,1), then the viewBox mm -> px
        return np.array([x + 2, y + 1]) * PX_PER_MM

    # the CSS class .mug gave the half disc its colour; its relative arc is a curve through the top
    assert ps.colors[0].tolist() == pytest.approx([0x8B / 255, 0x45 / 255, 0x13 / 255, 1.0])
    disc = _sample(outlines[0][1])
    centre, radius = mm(18, 30), 10 * PX_PER_MM
    assert np.linalg.norm(disc - mm(18, 20), axis=1).min() < 0.01  # the arc's midpoint, 10 mm above the chord
    upper = disc[:, 1] < centre[1] - 1e-6
    assert upper.sum() > 100 and np.allclose(np.linalg.norm(disc[upper] - centre, axis=1), radius, atol=0.01)

    # rotate(20,40,10) scale(1.2) of the rect, exactly where the transforms put its corners
    a = np.radians(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[30, 5], [40, 5], [40, 11], [30, 11]]) * 1.2
    want = ((corners - [40, 10]) @ rot.T + [40, 10] + [2, 1]) * PX_PER_MM
    assert np.allclose(outlines[1][1][::3].numpy(), want, atol=1e-9)
    assert ps.colors[1, 3].item() == pytest.approx(0.8)

    # a named colour, and the circle round at its place
    assert ps.colors[2, :3].tolist() == [100 / 255, 149 / 255, 237 / 255]
    ring = _sample(outlines[2][1])
    assert np.allclose(np.linalg.norm(ring - mm(48, 30), axis=1), 6 * PX_PER_MM, atol=0.01)

    # the <use> copy of the leaf in <defs>, moved by x=10 y=8, in the leaf's own fill
    assert ps.colors[3].tolist() == pytest.approx([0x22 / 255, 0x8B / 255, 0x22 / 255, 1.0])
    leaf = outlines[3][1].numpy()
    assert np.allclose(leaf[0], mm(10, 8)) and np.allclose(leaf[3], mm(18, 8))

    # the compound path keeps its even-odd rule: two subpaths, one path
    assert [owner for owner, _ in outlines[4:]] == [4, 4] and ps.evenodd.tolist() == [False] * 4 + [True]

    # what cannot be represented is named, not dropped silently
    assert any("path2" in w and "stroke" in w for w in doc.warnings), doc.warnings
    assert any("text1" in w and "Mug" in w for w in doc.warnings), doc.warnings

    # and the whole picture is what resvg draws of the same file (without the stroke and text we skip)
    svg = DRAWING.read_text()
    representable = re.sub(r'<path\s+style="fill:none.*?/>', "", re.sub(r"<text.*?</text>", "", svg, flags=re.S),
                           flags=re.S)
    assert representable.count("<path") == svg.count("<path") - 1 and "<text" not in representable
    ours = doc.render(background=torch.ones(3)).image.double().numpy()
    assert psnr(ours, _resvg_at_96_dpi(representable, doc.width, doc.height)) >= 35
    hole = np.round(mm(50, 8)).astype(int)
    assert ours[hole[1], hole[0]].tolist() == pytest.approx([1, 1, 1, 1], abs=1e-6)  # even-odd: the hole is open


@pytest.mark.parametrize(("width", "height", "box", "size"), [
    ("4in", "2in", None, (384, 192)),
    ("2.54cm", "25.4mm", None, (96, 96)),
    ("72pt", "36pt", None, (96, 48)),
    ("100%", "50%", "0 0 40 20", (40, 10)),
])
def test_sizes_in_units_become_pixels_at_96_dpi(width, height, box, size):
    view = f' viewBox="{box}"' if box else ""
    doc = parse_svg(f'<svg xmlns="{SVG_NS}" width="{width}" height="{height}"{view}>'
                    '<rect x="0" y="0" width="1" height="1" fill="red"/></svg>')
    assert (doc.width, doc.height) == size


def test_viewbox_maps_user_units_to_pixels_and_rounding_is_reported():
    doc = parse_svg(f'<svg xmlns="{SVG_NS}" width="10mm" height="10mm" viewBox="0 0 10 10">'
                    '<rect x="1" y="2" width="3" height="4" rx="1" fill="#00ff00"/></svg>')
    assert (doc.width, doc.height) == (38, 38) and doc.warnings == ["size 37.7953x37.7953 px rounded to whole pixels"]
    ps = doc.layers[0].paths
    assert doc.layers[0].label == "unlayered"
    lo, hi = ps.points.amin(0).numpy(), ps.points.amax(0).numpy()
    assert np.allclose(lo, np.array([1, 2]) * PX_PER_MM) and np.allclose(hi, np.array([4, 6]) * PX_PER_MM)
    corner = _sample(ps.outlines()[0][1])
    assert np.linalg.norm(corner - np.array([1, 2]) * PX_PER_MM, axis=1).min() > 0.2  # the rounded corner is cut


def test_opacity_visibility_and_what_is_left_out():
    doc = parse_svg(f"""<svg xmlns="{SVG_NS}" xmlns:inkscape="{INKSCAPE_NS}" width="20" height="20">
      <defs><radialGradient id="r"><stop offset="0" stop-color="red"/></radialGradient></defs>
      <g inkscape:groupmode="layer" inkscape:label="a" opacity="0.5">
        <g style="opacity:0.5"><path d="M0 0H4V4Z" fill="red" fill-opacity="0.8" opacity="0.5"/></g>
        <path d="M0 0H4V4Z" fill="red" visibility="hidden"/>
        <path d="M0 0H4V4Z" fill="red" style="display:none"/>
        <path d="M0 0H4V4Z" fill="url(#r)"/>
        <path d="M0 0H4V4Z" fill="transparent"/>
        <image width="4" height="4" href="x.png"/>
        <rect width="4" height="4" fill="red" clip-path="url(#c)"/>
      </g>
    </svg>""")
    ps = doc.layers[0].paths
    assert ps.num_paths == 2 and ps.colors[0, 3].item() == pytest.approx(0.5 * 0.5 * 0.8 * 0.5)
    assert any("group opacity" in w for w in doc.warnings)
    assert any("radialGradient" in w for w in doc.warnings) and any("<image>" in w for w in doc.warnings)
    assert any("clip-path" in w for w in doc.warnings)


def test_every_css_colour_name_is_read():
    for name, value in ImageColor.colormap.items():  # Pillow's table: an independent copy of CSS's
        assert parse_color(name) == tuple(c / 255 for c in ImageColor.getrgb(value)[:3]), name
    assert parse_color("cornflowerblue") == (100 / 255, 149 / 255, 237 / 255)
    assert parse_color(" Transparent ") is None and parse_color("none") is None
    assert parse_color("#AbC") == (0xAA / 255, 0xBB / 255, 0xCC / 255)
    assert parse_color("hsl(120, 100%, 25%)") == pytest.approx((0, 0.5, 0), abs=1 / 255)
    for bad in ("hotpink2", "", "#12", "rgb(1 2 3)", "url(#g)"):
        with pytest.raises(ValueError, match="unsupported colour"):
            parse_color(bad)
