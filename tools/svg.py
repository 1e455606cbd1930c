"""The layered SVG: written exactly as the contract says, read back into renderable paths.

Writing: one ``<g>`` per layer, background first, marked as an Inkscape layer so Inkscape and
Illustrator show real layers; closed cubic paths with 2-decimal coordinates, ``#rrggbb`` fills and
``fill-rule="nonzero"``; a gradient fill is a two-stop ``linearGradient`` in user space, in a
``<defs>`` at the top of its layer. The writer is hand-made on purpose: its exact text is the
product's contract.

Reading goes through svgelements, a maintained SVG parser, because files come back from editors
(mm sizes, CSS classes, arcs, ``<use>`` clones, named colours) and a hand-written reader kept
meeting one more feature; what it resolves arrives in pixels and becomes closed cubic outlines.
Colours and linear gradients are read by ``svg_paint`` (a gradient as the renderer draws it: an
axis and two colours). What cannot be represented (text, images, strokes, radial gradients,
patterns) is listed in ``SvgDocument.warnings``.

Round trip: writing what was read gives back the same text (values already on the 2-decimal / 8-bit
grid, an identity viewBox).
"""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import numpy as np
import svgelements as se
import torch
from torch import Tensor

from .atomic import write_text_atomic
from .svg_paint import Gradients, SvgError, Unsupported, fraction, rgba_of
from .vectorize.gradient import flat_gradients
from .vectorize.pathset import PathSet
from .vectorize.render import AXIS_EPS, RenderResult

SVG_NS = "http://www.w3.org/2000/svg"
INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"
_INK = f"{{{INKSCAPE_NS}}}"


@dataclass
class SvgLayer:
    id: str  # "layer-NN-slug"
    label: str  # what the user sees in the layers panel
    paths: PathSet


@dataclass
class SvgDocument:
    width: int
    height: int
    layers: list[SvgLayer]
    warnings: list[str] = field(default_factory=list)

    def all_paths(self) -> PathSet:
        """Every layer's paths in painter's order (background first)."""
        return reduce(PathSet.concat, (layer.paths for layer in self.layers), PathSet.empty())

    def render(self, background: Tensor | None = None, **kwargs) -> RenderResult:
        return self.all_paths().render(self.height, self.width, background=background, **kwargs)


def slugify(label: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    return slug[:40] or "layer"


def layer_id(index: int, label: str) -> str:
    return f"layer-{index:02d}-{slugify(label)}"


# ----------------------------------------------------------------------------------------- write


def _num(v: float, places: int = 2) -> str:
    s = f"{v:.{places}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "", "-") else s


def _hex(rgb: np.ndarray) -> str:
    r, g, b = (round(float(c) * 255) for c in np.clip(rgb, 0, 1))
    return f"#{r:02x}{g:02x}{b:02x}"


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def path_data(outlines: list[np.ndarray]) -> str:
    """``d`` for closed cubic outlines, each (3K, 2): ``Mx,yCx,y x,y x,y ...Z`` per outline."""
    parts = []
    for pts in outlines:
        k = pts.shape[0] // 3
        seq = [pts[(3 * i + j) % pts.shape[0]] for i in range(k) for j in (1, 2, 3)]
        coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in seq)
        parts.append(f"M{_num(pts[0, 0])},{_num(pts[0, 1])}C{coords}Z")
    return "".join(parts)


def to_svg_string(doc: SvgDocument) -> str:
    w, h = doc.width, doc.height
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="{SVG_NS}" xmlns:inkscape="{INKSCAPE_NS}" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
    ]
    for layer in doc.layers:
        lines.append(f'<g id="{_escape(layer.id)}" inkscape:groupmode="layer" inkscape:label="{_escape(layer.label)}">')
        ps = layer.paths
        pts = ps.points.detach().cpu().double().numpy()
        cols = ps.colors.detach().cpu().double().numpy()
        by_path: list[list[np.ndarray]] = [[] for _ in range(ps.num_paths)]
        start = 0
        for owner, k in zip(ps.owner.tolist(), ps.segment_counts.tolist(), strict=True):
            by_path[owner].append(pts[start : start + 3 * k])
            start += 3 * k
        grads = None if ps.gradients is None else ps.gradients.detach().cpu().double().numpy()
        fills = [_hex(cols[i, :3]) for i in range(ps.num_paths)]
        defs = []
        for i in range(ps.num_paths) if grads is not None else ():
            axis = [_num(v) for v in grads[i, :4]]
            x1, y1, x2, y2 = (float(v) for v in axis)
            end = _hex(grads[i, 4:7])
            if (x2 - x1) ** 2 + (y2 - y1) ** 2 <= AXIS_EPS or end == fills[i]:
                continue  # paints one colour: a flat fill says so
            gid = f"{layer.id}-g{i}"
            defs.append(f'<linearGradient id="{_escape(gid)}" gradientUnits="userSpaceOnUse" x1="{axis[0]}" '
                        f'y1="{axis[1]}" x2="{axis[2]}" y2="{axis[3]}"><stop offset="0" stop-color="{fills[i]}"/>'
                        f'<stop offset="1" stop-color="{end}"/></linearGradient>')
            fills[i] = f"url(#{_escape(gid)})"
        if defs:
            lines.extend(["<defs>", *defs, "</defs>"])
        for i, outlines in enumerate(by_path):
            if not outlines:
                continue
            rule = "evenodd" if bool(ps.evenodd[i]) else "nonzero"
            lines.append(
                f'<path d="{path_data(outlines)}" fill="{fills[i]}" '
                f'fill-opacity="{_num(float(np.clip(cols[i, 3], 0, 1)), 3)}" fill-rule="{rule}"/>'
            )
        lines.append("</g>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def write_svg(doc: SvgDocument, path: str | Path) -> Path:
    return write_text_atomic(path, to_svg_string(doc))


# ------------------------------------------------------------------------------------------ read

_INK_LAYER = _INK + "groupmode"
_ARC_STEP = math.pi / 4  # per cubic: radial error about 3e-5 of the radius, invisible at any size we render


def _outlines(segments: Iterable[se.PathSegment]) -> list[np.ndarray]:
    """svgelements segments -> closed cubic outlines, each (3K, 2).

    Lines and quadratics become exact cubics, arcs cubics of at most 45 degrees; an open subpath is
    closed with a straight segment, as filling does, unless the pen is back within float noise of
    the start (an outline's last point is its first anyway): a circle's fourth arc, or a file of
    ours, gains no sliver segment.
    """
    out: list[np.ndarray] = []
    pts: list[tuple[float, float]] = []
    start = cur = (0.0, 0.0)

    def line(a: tuple[float, float], b: tuple[float, float]) -> None:
        dx, dy = (b[0] - a[0]) / 3, (b[1] - a[1]) / 3
        pts.extend((a, (a[0] + dx, a[1] + dy), (a[0] + 2 * dx, a[1] + 2 * dy)))

    def close() -> None:
        if pts:
            if abs(cur[0] - start[0]) > 1e-9 or abs(cur[1] - start[1]) > 1e-9:
                line(cur, start)
            out.append(np.array(pts, dtype=np.float64))
            pts.clear()

    for seg in segments:
        if isinstance(seg, se.Move):
            close()
            start = cur = (seg.end.x, seg.end.y)
            continue
        if isinstance(seg, se.Close):
            close()
            cur = start
            continue
        end = (seg.end.x, seg.end.y)
        if isinstance(seg, se.Line):
            line(cur, end)
        elif isinstance(seg, se.CubicBezier):
            pts.extend((cur, (seg.control1.x, seg.control1.y), (seg.control2.x, seg.control2.y)))
        elif isinstance(seg, se.QuadraticBezier):
            q = (seg.control.x, seg.control.y)
            pts.extend((cur, (cur[0] + 2 / 3 * (q[0] - cur[0]), cur[1] + 2 / 3 * (q[1] - cur[1])),
                        (end[0] + 2 / 3 * (q[0] - end[0]), end[1] + 2 / 3 * (q[1] - end[1]))))
        elif isinstance(seg, se.Arc):
            n = max(1, math.ceil(abs(seg.sweep) / _ARC_STEP - 1e-9))
            first = len(pts)
            for c in seg.as_cubic_curves(n):
                pts.extend(((c.start.x, c.start.y), (c.control1.x, c.control1.y), (c.control2.x, c.control2.y)))
            if len(pts) == first:  # a zero-length arc draws nothing but still moves the pen
                line(cur, end)
            pts[first] = cur
        cur = end
    close()
    return out


class _LayerBuilder:
    def __init__(self, id_: str, label: str):
        self.id, self.label = id_, label
        self.points: list[np.ndarray] = []
        self.counts: list[int] = []
        self.owner: list[int] = []
        self.colors: list[list[float]] = []
        self.evenodd: list[bool] = []
        self.gradients: list[list[float] | None] = []

    def add(self, outlines: list[np.ndarray], rgba: list[float], evenodd: bool,
            gradient: list[float] | None = None) -> None:
        outlines = [o for o in outlines if o.shape[0] >= 3]
        if not outlines:
            return
        for o in outlines:
            self.points.append(o)
            self.counts.append(o.shape[0] // 3)
            self.owner.append(len(self.colors))
        self.colors.append(rgba)
        self.evenodd.append(evenodd)
        self.gradients.append(gradient)

    def _gradient_rows(self) -> Tensor | None:
        """(P, 7) for the renderer when any path has a gradient, the flat ones painting their colour."""
        if not any(self.gradients):
            return None
        rows = flat_gradients(torch.as_tensor(self.colors, dtype=torch.float64))
        for i, g in enumerate(self.gradients):
            if g is not None:
                rows[i] = torch.as_tensor(g, dtype=torch.float64)
        return rows

    def build(self) -> SvgLayer:
        if not self.colors:
            ps = PathSet.empty(torch.float64)
        else:
            ps = PathSet(
                torch.as_tensor(np.concatenate(self.points), dtype=torch.float64),
                torch.as_tensor(self.counts, dtype=torch.long),
                torch.as_tensor(self.owner, dtype=torch.long),
                torch.as_tensor(self.colors, dtype=torch.float64),
                torch.as_tensor(self.evenodd, dtype=torch.bool), self._gradient_rows())
        return SvgLayer(self.id, self.label, ps)


def _name(el: se.SVGElement) -> str:
    """``<tag id="...">`` as the user would find the element in an editor."""
    ident = (attrs := el.values.get("attributes", {})).get("id")
    return f"<{attrs.get('tag', '?')}{f' id={ident!r}' if ident else ''}>"


class _Reader:
    """One pass over svgelements' tree, collecting layers and the warnings of what was left out."""

    def __init__(self, gradients: Gradients) -> None:
        self.gradients = gradients
        self.builders: list[_LayerBuilder] = []
        self.loose: _LayerBuilder | None = None
        self.warnings: list[str] = []

    def walk(self, node: se.Group | se.Use, target: _LayerBuilder | None, opacity: float) -> None:
        spans: list[str] = []  # svgelements lists a <text>'s <tspan>s just before it, as siblings
        for el in node:
            if isinstance(el, se.Shape):
                self.shape(el, target, opacity)
            elif isinstance(el, se.Group | se.Use):
                attrs = el.values.get("attributes", {})
                self.effects(el)
                own = fraction(attrs.get("opacity"), "opacity")
                if own != 1:
                    self.warnings.append("group opacity applied to each path separately")
                if target is None and isinstance(el, se.Group) and attrs.get(_INK_LAYER) == "layer":
                    label = attrs.get(_INK + "label") or attrs.get("id") or f"layer {len(self.builders)}"
                    layer = _LayerBuilder(attrs.get("id") or layer_id(len(self.builders), label), label)
                    self.builders.append(layer)
                    self.walk(el, layer, opacity * own)
                else:
                    self.walk(el, target, opacity * own)
            elif isinstance(el, se.Text):
                spans.append((el.text or "").strip())
                if el.values.get("attributes", {}).get("tag") != "tspan":
                    words = " ".join(w for w in [spans.pop(), *spans] if w)
                    spans.clear()
                    self.warnings.append(f"{_name(el)} {words[:40]!r} is text, not a filled shape (convert it to a "
                                         "path in the editor); skipped")
            elif isinstance(el, se.Image):
                self.warnings.append(f"{_name(el)} is a bitmap image, not a filled shape; skipped")

    def effects(self, el: se.Shape | se.Group | se.Use) -> None:
        attrs = el.values.get("attributes", {})
        for key in ("clip-path", "mask", "filter"):
            if attrs.get(key, "none").strip() != "none":
                self.warnings.append(f"the {key} of {_name(el)} cannot be represented and was ignored")

    def shape(self, el: se.Shape, target: _LayerBuilder | None, opacity: float) -> None:
        v = el.values
        if v.get("visibility", "visible").strip() in ("hidden", "collapse"):
            return
        width = re.sub(r"[a-z%]+$", "", v.get("stroke-width", "1").strip().lower())
        stroked = v.get("stroke", "none").strip() not in ("none", "transparent") and width.strip("0.") != ""
        fill = "none" if isinstance(el, se.SimpleLine) else v.get("fill", "black").strip()  # a line encloses nothing
        gradient = None
        if fill.startswith("url("):
            try:
                start, end, fade, axis, notes = self.gradients.fill(fill, el)
            except Unsupported as why:
                self.warnings.append(f"{_name(el)} {why}; skipped")
                return
            self.warnings.extend(f"{_name(el)}: {n}" for n in notes)
            rgba, gradient = (*start, fade), [*axis, *end]
        else:
            rgba = rgba_of(fill)
        if rgba is None:
            if stroked:
                self.warnings.append(f"{_name(el)} has only a stroke, which cannot be represented; skipped")
            return
        if stroked:
            self.warnings.append(f"the stroke of {_name(el)} cannot be represented and was left out")
        self.effects(el)
        segments = list(el.segments())
        if segments and not isinstance(segments[0], se.Move):  # SVG draws a path only from its first moveto
            self.warnings.append(f"the path data of {_name(el)} does not begin with a moveto; skipped")
            return
        outlines = _outlines(segments)
        if not outlines:
            return
        if not all(np.isfinite(o).all() for o in outlines):  # 1e999 reads as inf; NaN points would render nothing
            raise SvgError(f"{_name(el)} has coordinates that are not finite numbers")
        alpha = rgba[3] * fraction(v.get("fill-opacity"), "fill-opacity") * opacity
        alpha *= fraction(v.get("attributes", {}).get("opacity"), "opacity")
        if target is None:
            if self.loose is None:
                self.loose = _LayerBuilder(layer_id(len(self.builders), "unlayered"), "unlayered")
                self.builders.append(self.loose)
            target = self.loose
        target.add(outlines, [*rgba[:3], alpha], v.get("fill-rule", "nonzero").strip() == "evenodd", gradient)


def _size(root: se.SVG) -> tuple[float, float]:
    """The pixel size svgelements gave the root, refused when the file does not really say one."""
    attrs = root.values.get("attributes", {})
    has_box = bool(attrs.get("viewBox", "").strip())
    given = [attrs.get(k, "").strip() for k in ("width", "height")]
    if not has_box and any(not g or g.endswith("%") for g in given):
        raise SvgError("the SVG has no usable width/height or viewBox")
    w, h = float(root.width), float(root.height)
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise SvgError("the SVG has no usable width/height or viewBox")
    return w, h


def parse_svg(text: str) -> SvgDocument:
    """SVG text -> document. Raises SvgError (one line) on anything that is not a readable SVG."""
    try:
        root = se.SVG.parse(io.StringIO(text), reify=False, on_error="raise")
    except ET.ParseError as exc:
        raise SvgError(f"not a well-formed SVG: {exc}") from None
    except RecursionError:
        raise SvgError("not a readable SVG: a <use> refers to itself, or elements nest too deeply") from None
    # svgelements trips on malformed values in many ways (d="hidden": AttributeError)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, ArithmeticError) as exc:
        detail = str(exc).strip().splitlines()[-1:] or ["path data or a shape attribute is malformed"]
        raise SvgError(f"not a readable SVG: {detail[0][:200]}") from None
    if not isinstance(root, se.SVG):
        raise SvgError("not an SVG document (root element is not <svg>)")
    width, height = _size(root)
    reader = _Reader(Gradients(text))
    reader.walk(root, None, 1.0)
    warnings = reader.warnings
    if abs(width - round(width)) > 1e-9 or abs(height - round(height)) > 1e-9:
        warnings.append(f"size {width:g}x{height:g} px rounded to whole pixels")
    # at least one pixel: a size under half a pixel would round to an image nothing can be drawn into
    return SvgDocument(max(1, round(width)), max(1, round(height)), [b.build() for b in reader.builders], warnings)


def read_svg(path: str | Path) -> SvgDocument:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SvgError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SvgError(f"{p}: cannot read ({exc})") from None
    return parse_svg(text)
