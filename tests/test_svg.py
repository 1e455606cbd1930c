"""SVG writing in the contract's exact form, and reading it (and edited variants) back."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from tools.metrics import premultiply, psnr, resvg_render
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
from tools.vectorize.geometry import unit_circle
from tools.vectorize.pathset import PathSet
from tools.vectorize.scenes import random_blobs


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
    assert any("arc" in w for w in doc.warnings)
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
    (f"<svg xmlns='{SVG_NS}' width='4in' height='4'/>", "length"),
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
