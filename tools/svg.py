"""The layered SVG: written exactly as the contract says, read back into renderable paths.

Writing: one ``<g>`` per layer, background first, marked as an Inkscape layer so Inkscape and
Illustrator show real layers; closed cubic paths with 2-decimal coordinates, ``#rrggbb`` fills and
``fill-rule="nonzero"``. Reading accepts our own files and what editors typically make of them
(relative commands, lines, quadratics, ``style`` attributes, transforms, basic shapes), so a file
edited in Inkscape can be read, edited again and rendered. Anything that cannot be represented is
listed in ``SvgDocument.warnings``, never dropped silently.

Round trip: writing what was read gives back the same text, because the written values are
already on the 2-decimal / 8-bit grid.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .atomic import write_text_atomic
from .vectorize.geometry import unit_circle
from .vectorize.pathset import PathSet
from .vectorize.render import RenderResult

SVG_NS = "http://www.w3.org/2000/svg"
INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"
_SVG = f"{{{SVG_NS}}}"
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
        out = PathSet.empty()
        for layer in self.layers:
            out = out.concat(layer.paths)
        return out

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
        for i, outlines in enumerate(by_path):
            if not outlines:
                continue
            rule = "evenodd" if bool(ps.evenodd[i]) else "nonzero"
            lines.append(
                f'<path d="{path_data(outlines)}" fill="{_hex(cols[i, :3])}" '
                f'fill-opacity="{_num(float(np.clip(cols[i, 3], 0, 1)), 3)}" fill-rule="{rule}"/>'
            )
        lines.append("</g>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def write_svg(doc: SvgDocument, path: str | Path) -> Path:
    return write_text_atomic(path, to_svg_string(doc))


# ------------------------------------------------------------------------------------------ read

_TOKEN = re.compile(r"([MmCcLlHhVvZzSsQqTtAa])|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_NAMED = {
    "black": "#000000", "white": "#ffffff", "red": "#ff0000", "green": "#008000", "blue": "#0000ff",
    "yellow": "#ffff00", "cyan": "#00ffff", "magenta": "#ff00ff", "gray": "#808080", "grey": "#808080",
    "orange": "#ffa500", "purple": "#800080", "brown": "#a52a2a", "pink": "#ffc0cb",
}


def parse_color(text: str) -> tuple[float, float, float] | None:
    """CSS colour -> RGB in [0, 1]; None for ``none``. Raises ValueError when unreadable."""
    t = text.strip().lower()
    if t in ("none", "transparent"):
        return None
    t = _NAMED.get(t, t)
    if re.fullmatch(r"#[0-9a-f]{6}", t):
        return tuple(int(t[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]
    if re.fullmatch(r"#[0-9a-f]{3}", t):
        return tuple(int(c * 2, 16) / 255 for c in t[1:])  # type: ignore[return-value]
    m = re.fullmatch(r"rgba?\(([^)]*)\)", t)
    if m:
        vals = [v.strip() for v in m.group(1).split(",")]
        out = [float(v[:-1]) / 100 if v.endswith("%") else float(v) / 255 for v in vals[:3]]
        return tuple(min(max(v, 0.0), 1.0) for v in out)  # type: ignore[return-value]
    raise ValueError(f"unsupported colour {text!r}")


def _affine(text: str | None) -> np.ndarray:
    """SVG transform list -> 3x3 matrix."""
    m = np.eye(3)
    if not text:
        return m
    for name, args in re.findall(r"(\w+)\s*\(([^)]*)\)", text):
        v = [float(x) for x in re.split(r"[\s,]+", args.strip()) if x]
        t = np.eye(3)
        if name == "matrix" and len(v) == 6:
            t[:2] = [[v[0], v[2], v[4]], [v[1], v[3], v[5]]]
        elif name == "translate":
            t[0, 2], t[1, 2] = v[0], v[1] if len(v) > 1 else 0.0
        elif name == "scale":
            t[0, 0], t[1, 1] = v[0], v[1] if len(v) > 1 else v[0]
        elif name == "rotate":
            a = math.radians(v[0])
            r = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
            if len(v) == 3:
                c = np.array([[1, 0, v[1]], [0, 1, v[2]], [0, 0, 1.0]])
                ci = np.array([[1, 0, -v[1]], [0, 1, -v[2]], [0, 0, 1.0]])
                r = c @ r @ ci
            t = r
        elif name == "skewX":
            t[0, 1] = math.tan(math.radians(v[0]))
        elif name == "skewY":
            t[1, 0] = math.tan(math.radians(v[0]))
        else:
            raise ValueError(f"unsupported transform {name}({args})")
        m = m @ t
    return m


def parse_path_data(d: str) -> tuple[list[np.ndarray], list[str]]:
    """``d`` -> closed cubic outlines, each (3K, 2); plus warnings. Lines and quadratics become
    exact cubics; open subpaths are closed with a straight segment, as filling does."""
    tokens = _TOKEN.findall(d)
    outlines: list[np.ndarray] = []
    warnings: list[str] = []
    segs: list[list[np.ndarray]] = []
    cur = np.zeros(2)
    start = np.zeros(2)
    last_ctrl: np.ndarray | None = None
    last_q: np.ndarray | None = None
    i = 0
    cmd = ""

    def take(n: int) -> list[float]:
        nonlocal i
        vals = []
        for _ in range(n):
            if i >= len(tokens) or tokens[i][1] == "":
                raise ValueError(f"path data ends early or is malformed near token {i}: {d[:60]!r}")
            vals.append(float(tokens[i][1]))
            i += 1
        return vals

    def line(p: np.ndarray) -> None:
        segs.append([cur.copy(), cur + (p - cur) / 3, cur + 2 * (p - cur) / 3, p.copy()])

    def close() -> None:
        nonlocal segs
        if segs:
            if not np.array_equal(segs[-1][3], start):
                segs.append([segs[-1][3].copy(), segs[-1][3] + (start - segs[-1][3]) / 3,
                             segs[-1][3] + 2 * (start - segs[-1][3]) / 3, start.copy()])
            outlines.append(np.array([p for s in segs for p in s[:3]]))
        segs = []

    while i < len(tokens):
        if tokens[i][0]:
            cmd = tokens[i][0]
            i += 1
            if cmd in "Zz":
                close()
                cur = start.copy()
                last_ctrl = last_q = None
                continue
        elif not cmd:
            raise ValueError("path data must start with a command")
        rel = cmd.islower()
        base = cur if rel else np.zeros(2)
        c = cmd.upper()
        if c == "M":
            close()
            cur = base + take(2)
            start = cur.copy()
            cmd = "l" if rel else "L"  # further pairs are implicit lines
            last_ctrl = last_q = None
        elif c == "L":
            p = base + take(2)
            line(p)
            cur = p
            last_ctrl = last_q = None
        elif c in "HV":
            v = take(1)[0]
            p = cur.copy()
            k = 0 if c == "H" else 1
            p[k] = (cur[k] if rel else 0.0) + v
            line(p)
            cur = p
            last_ctrl = last_q = None
        elif c == "C":
            v = take(6)
            c1, c2, p = base + v[0:2], base + v[2:4], base + v[4:6]
            segs.append([cur.copy(), c1, c2, p])
            cur, last_ctrl, last_q = p, c2, None
        elif c == "S":
            v = take(4)
            c1 = 2 * cur - last_ctrl if last_ctrl is not None else cur.copy()
            c2, p = base + v[0:2], base + v[2:4]
            segs.append([cur.copy(), c1, c2, p])
            cur, last_ctrl, last_q = p, c2, None
        elif c in "QT":
            if c == "Q":
                v = take(4)
                q, p = base + v[0:2], base + v[2:4]
            else:
                v = take(2)
                q = 2 * cur - last_q if last_q is not None else cur.copy()
                p = base + v[0:2]
            segs.append([cur.copy(), cur + 2 / 3 * (q - cur), p + 2 / 3 * (q - p), p])
            cur, last_q, last_ctrl = p, q, None
        elif c == "A":
            v = take(7)
            p = base + v[5:7]
            warnings.append("elliptical arc replaced by a straight segment (arcs are not supported)")
            line(p)
            cur = p
            last_ctrl = last_q = None
        else:  # pragma: no cover - the tokenizer only yields the letters above
            raise ValueError(f"unsupported path command {cmd}")
    close()
    return outlines, warnings


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return unit_circle(4).numpy() * [rx, ry] + [cx, cy]


def _shape_outlines(el: ET.Element, tag: str) -> tuple[list[np.ndarray], list[str]]:
    f = lambda name, default=0.0: float(re.sub(r"px$", "", el.get(name, str(default))))  # noqa: E731
    if tag == "path":
        return parse_path_data(el.get("d", ""))
    if tag == "rect":
        x, y, w, h = f("x"), f("y"), f("width"), f("height")
        return parse_path_data(f"M{x},{y}H{x + w}V{y + h}H{x}Z")
    if tag == "circle":
        r = f("r")
        return [_ellipse(f("cx"), f("cy"), r, r)], []
    if tag == "ellipse":
        return [_ellipse(f("cx"), f("cy"), f("rx"), f("ry"))], []
    if tag in ("polygon", "polyline"):
        return parse_path_data("M" + el.get("points", "") + "Z")
    return [], []


def _style(el: ET.Element, inherited: dict[str, str]) -> dict[str, str]:
    st = dict(inherited)
    st.pop("opacity", None)
    for key in ("fill", "fill-opacity", "fill-rule", "opacity", "display"):
        if el.get(key) is not None:
            st[key] = el.get(key, "")
    for item in el.get("style", "").split(";"):
        if ":" in item:
            k, v = item.split(":", 1)
            st[k.strip()] = v.strip()
    return st


class _LayerBuilder:
    def __init__(self, id_: str, label: str):
        self.id, self.label = id_, label
        self.points: list[np.ndarray] = []
        self.counts: list[int] = []
        self.owner: list[int] = []
        self.colors: list[list[float]] = []
        self.evenodd: list[bool] = []

    def add(self, outlines: list[np.ndarray], rgba: list[float], evenodd: bool) -> None:
        outlines = [o for o in outlines if o.shape[0] >= 3]
        if not outlines:
            return
        for o in outlines:
            self.points.append(o)
            self.counts.append(o.shape[0] // 3)
            self.owner.append(len(self.colors))
        self.colors.append(rgba)
        self.evenodd.append(evenodd)

    def build(self) -> SvgLayer:
        if not self.colors:
            ps = PathSet.empty(torch.float64)
        else:
            ps = PathSet(
                torch.as_tensor(np.concatenate(self.points), dtype=torch.float64),
                torch.as_tensor(self.counts, dtype=torch.long),
                torch.as_tensor(self.owner, dtype=torch.long),
                torch.as_tensor(self.colors, dtype=torch.float64),
                torch.as_tensor(self.evenodd, dtype=torch.bool),
            )
        return SvgLayer(self.id, self.label, ps)


def _length(text: str | None) -> float | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*(px)?\s*", text)
    if not m:
        raise ValueError(f"unsupported length {text!r} (use plain pixels)")
    return float(m.group(1))


def parse_svg(text: str) -> SvgDocument:
    """SVG text -> document. Raises ValueError on anything that is not a readable SVG."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not a well-formed SVG: {exc}") from None
    if root.tag != _SVG + "svg":
        raise ValueError("not an SVG document (root element is not <svg>)")
    vb = [float(v) for v in re.split(r"[\s,]+", root.get("viewBox", "").strip()) if v]
    width, height = _length(root.get("width")), _length(root.get("height"))
    if len(vb) == 4:
        view = np.array([[1, 0, -vb[0]], [0, 1, -vb[1]], [0, 0, 1.0]])
        width = width if width is not None else vb[2]
        height = height if height is not None else vb[3]
        view = np.diag([width / vb[2], height / vb[3], 1.0]) @ view
    else:
        view = np.eye(3)
    if width is None or height is None or width <= 0 or height <= 0:
        raise ValueError("the SVG has no usable width/height or viewBox")
    warnings: list[str] = []
    builders: list[_LayerBuilder] = []
    loose: _LayerBuilder | None = None

    def walk(el: ET.Element, m: np.ndarray, style: dict[str, str], target: _LayerBuilder | None) -> None:
        nonlocal loose
        for child in el:
            tag = child.tag.replace(_SVG, "")
            if tag in ("defs", "metadata", "title", "desc", "style") or not isinstance(child.tag, str):
                continue
            st = _style(child, style)
            if st.get("display") == "none":
                continue
            cm = m @ _affine(child.get("transform"))
            if tag == "g":
                if target is None and child.get(_INK + "groupmode") == "layer":
                    label = child.get(_INK + "label") or child.get("id") or f"layer {len(builders)}"
                    b = _LayerBuilder(child.get("id") or layer_id(len(builders), label), label)
                    builders.append(b)
                    walk(child, cm, st, b)
                else:
                    if float(st.get("opacity", 1)) != 1:
                        warnings.append("group opacity applied to each path separately")
                        st["_group_opacity"] = str(float(style.get("_group_opacity", 1)) * float(st["opacity"]))
                    walk(child, cm, st, target)
                continue
            outlines, warn = _shape_outlines(child, tag)
            warnings.extend(warn)
            if tag not in ("path", "rect", "circle", "ellipse", "polygon", "polyline"):
                warnings.append(f"<{tag}> is not a filled shape and was skipped")
                continue
            rgb = parse_color(st.get("fill", "black"))
            if rgb is None or not outlines:
                continue
            alpha = float(st.get("fill-opacity", 1)) * float(st.get("opacity", 1))
            alpha *= float(st.get("_group_opacity", 1))
            outlines = [(np.c_[o, np.ones(len(o))] @ cm.T)[:, :2] for o in outlines]
            if target is None:
                if loose is None:
                    loose = _LayerBuilder(layer_id(len(builders), "unlayered"), "unlayered")
                    builders.append(loose)
                dest = loose
            else:
                dest = target
            dest.add(outlines, [*rgb, min(max(alpha, 0.0), 1.0)], st.get("fill-rule", "nonzero") == "evenodd")

    walk(root, view, {}, None)
    if abs(width - round(width)) > 1e-9 or abs(height - round(height)) > 1e-9:
        warnings.append(f"size {width}x{height} rounded to whole pixels")
    return SvgDocument(round(width), round(height), [b.build() for b in builders], warnings)


def read_svg(path: str | Path) -> SvgDocument:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: cannot read ({exc})") from None
    return parse_svg(text)
