"""Paint in SVG files: CSS colours and opacities, and linear gradients, as the reader takes them.

Colours go through svgelements' parser, but only in forms it really knows (it answers black for
what it cannot read). Gradients are not kept by svgelements (it keeps no paint servers), so they
are looked up in the XML with ElementTree: the ``href`` chains editors write (Inkscape keeps the
stops in one gradient and the axis in another), ``gradientUnits``, ``gradientTransform`` and the
shape's own transform, all folded into one axis in the document's pixels and two colours, which is
what the renderer draws.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import svgelements as se


class SvgError(ValueError):  # a ValueError: the CLI's one-line error catches it
    """An SVG that cannot be read."""


_HEX = re.compile(r"#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_FUNCTIONAL = (se.REGEX_COLOR_RGB, se.REGEX_COLOR_RGB_PERCENT, se.REGEX_COLOR_HSL)
_BLACK = se.Color.parse("black")
_FIXES = {"aliceblue": "#f0f8ff", "rebeccapurple": "#663399"}  # wrong in / missing from svgelements 1.9.6


def rgba_of(text: str) -> tuple[float, float, float, float] | None:
    """CSS colour -> straight RGBA in [0, 1], None for none/transparent. svgelements answers black for
    what it cannot read, and a fill silently turned black is worse than an error: only forms it knows."""
    t = text.strip().lower()
    t = _FIXES.get(t, t)
    if t in ("none", "transparent"):
        return None
    known = (bool(_HEX.fullmatch(t)) or any(r.fullmatch(t) for r in _FUNCTIONAL)
             or (t.isalpha() and (t == "black" or se.Color.parse_color_lookup(t) != _BLACK)))
    try:
        c = se.Color(t) if known else None
    except ValueError:  # rgb(1.5, 2, 3): svgelements reads integer channels only
        c = None
    if c is None:
        raise SvgError(f"unsupported colour {text!r}")
    return c.red / 255, c.green / 255, c.blue / 255, c.alpha / 255


def parse_color(text: str) -> tuple[float, float, float] | None:
    """CSS colour -> RGB in [0, 1]; None for ``none``/``transparent``. Raises SvgError when unreadable."""
    rgba = rgba_of(text)
    return None if rgba is None else rgba[:3]


def fraction(text: str | None, what: str) -> float:
    """An opacity value (``0.5`` or ``50%``), clamped as CSS does."""
    if text is None or not text.strip():
        return 1.0
    t = text.strip()
    try:
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise SvgError(f"unsupported {what} {text!r}") from None
    if math.isnan(v):  # float() reads "nan", which clamping would pass on as a NaN alpha
        raise SvgError(f"unsupported {what} {text!r}")
    return min(max(v, 0.0), 1.0)


class Unsupported(Exception):
    """A paint server that cannot be represented: the reason, for the warning."""


_URL = re.compile(r"url\(\s*['\"]?#([^'\")\s]+)['\"]?\s*\)")
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _style(el: ET.Element, name: str) -> str | None:
    """A presentation attribute, the ``style`` declaration winning as in CSS."""
    for decl in el.get("style", "").split(";"):
        key, _, value = decl.partition(":")
        if key.strip() == name:
            return value.strip()
    return el.get(name)


def _matrix(m: se.Matrix) -> np.ndarray:
    return np.array([[m.a, m.c, m.e], [m.b, m.d, m.f], [0.0, 0.0, 1.0]])


class Gradients:
    """The document's paint servers by id, read with ElementTree: svgelements keeps none of them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._by_id: dict[str, ET.Element] | None = None

    @property
    def by_id(self) -> dict[str, ET.Element]:
        """Elements by id, indexed at the first gradient fill: most files have none, and need no second parse."""
        if self._by_id is None:
            self._by_id = {}
            try:
                root = ET.fromstring(self.text)
            except ET.ParseError:  # svgelements read it; a form ElementTree alone cannot (entities): no gradients
                return self._by_id
            for el in root.iter():
                if el.get("id"):
                    self._by_id.setdefault(el.get("id"), el)
        return self._by_id

    def _chain(self, el: ET.Element) -> list[ET.Element]:
        """The gradient and those it inherits from through ``href`` (attributes and stops)."""
        chain = [el]
        while len(chain) < 16:
            ref = chain[-1].get(_XLINK_HREF) or chain[-1].get("href") or ""
            nxt = self.by_id.get(ref[1:]) if ref.startswith("#") else None
            if nxt is None or nxt in chain or _local(nxt.tag) != "linearGradient":
                break
            chain.append(nxt)
        return chain

    def fill(self, fill: str, shape: se.Shape) -> tuple[list[float], list[float], float, list[float], list[str]]:
        """``fill="url(#id)"`` of ``shape`` -> (start RGB, end RGB, opacity factor, axis x1 y1 x2 y2 in
        the document's pixels, notes). Raises ``Unsupported``."""
        m = _URL.fullmatch(fill.strip())
        el = self.by_id.get(m.group(1)) if m else None
        if el is None:
            raise Unsupported(f"refers to {fill}, which is not in the file")
        if _local(el.tag) != "linearGradient":
            raise Unsupported(f"is filled with a {_local(el.tag)} ({fill}), which cannot be represented")
        chain = self._chain(el)

        def attr(name: str, default: str) -> str:
            return next((g.get(name) for g in chain if g.get(name) is not None), default)

        notes = []
        stops = next(([s for s in g if _local(s.tag) == "stop"] for g in chain
                      if any(_local(s.tag) == "stop" for s in g)), [])
        if not stops:
            raise Unsupported(f"is filled with a gradient without stops ({fill}), which paints nothing")
        if len(stops) > 2:
            notes.append(f"its gradient {fill} has {len(stops)} stops; drawn with the first and the last")
        if attr("spreadMethod", "pad").strip() != "pad":
            notes.append(f"its gradient {fill} repeats or reflects; drawn padded")
        offsets, colours, alphas = [], [], []
        for stop in (stops[0], stops[-1]):
            offsets.append(fraction(stop.get("offset", "0"), "stop offset"))
            rgba = rgba_of(_style(stop, "stop-color") or "black") or (0.0, 0.0, 0.0, 0.0)
            colours.append(list(rgba[:3]))
            alphas.append(rgba[3] * fraction(_style(stop, "stop-opacity"), "stop-opacity"))
        offsets[1] = max(offsets)
        if abs(alphas[0] - alphas[1]) > 1 / 255:
            notes.append(f"its gradient {fill} fades in opacity; drawn with the mean opacity")
        box = attr("gradientUnits", "objectBoundingBox").strip() == "objectBoundingBox"
        ends = []
        for name, default in (("x1", "0%"), ("y1", "0%"), ("x2", "100%"), ("y2", "0%")):
            text = attr(name, default).strip()
            if text.endswith("%") and not box:
                raise Unsupported(f"has a gradient ({fill}) placed in percentages of the viewport, which cannot "
                                   "be represented")
            try:
                ends.append(float(text[:-1]) / 100 if text.endswith("%") else float(text))
            except ValueError:
                raise SvgError(f"unsupported gradient coordinate {text!r} in {fill}") from None
        p0, p1 = np.array(ends[:2]), np.array(ends[2:])
        a, b = p0 + offsets[0] * (p1 - p0), p0 + offsets[1] * (p1 - p0)
        t = _matrix(shape.transform) @ _matrix(se.Matrix(attr("gradientTransform", "")))
        if box:
            x0, y0, x1, y1 = shape.bbox(transformed=False) or (0.0, 0.0, 0.0, 0.0)
            t = t @ np.array([[x1 - x0, 0, x0], [0, y1 - y0, y0], [0, 0, 1.0]])
        return colours[0], colours[1], (alphas[0] + alphas[1]) / 2, _axis(t, a, b), notes


def _axis(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[float]:
    """The axis a -> b of a linear gradient after the affine ``t``: lines of one colour stay parallel
    lines, but under a shear or unequal scaling no longer at right angles to the mapped axis, so the
    new axis runs along the mapped normal, with its length keeping both ends' colours in place."""
    d = b - a
    start = t[:2, :2] @ a + t[:2, 2]
    if float(d @ d) == 0:
        return [*start, *start]
    try:
        normal = np.linalg.inv(t[:2, :2]).T @ d
    except np.linalg.LinAlgError:
        raise Unsupported("has a gradient flattened to a line by its transform") from None
    end = start + normal * float(d @ d) / float(normal @ normal)
    return [float(v) for v in (*start, *end)]
