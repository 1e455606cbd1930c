"""The built-in planner for when no vision-language model is reachable.

It answers the same requests a model gets, with the same tool calls, from classical cues: the
image is split into colour regions (superpixels merged by colour, then joined where no edge
separates them, so a shaded surface is one region and overlapping objects of different colours
stay apart); a region is an object candidate when its colour is far from the colours along the
image border (the usual background prior); and the nearest candidate is one that no touching region
occludes, judged by boundary ownership (an occluder keeps its own outline and bites a notch into
what it covers). Layers are named by what can be said without a model: colour ("multicoloured"
when no one colour dominates) and place. It reads only the conversation (the latest residual image
and the tool results), so the graph, trace and replay treat it exactly like a model.
It cannot read hints; the run reports them as not honoured.
"""

from __future__ import annotations

import colorsys
import json
from dataclasses import dataclass, field

import cv2
import numpy as np

from tools.amodal import RIM
from tools.inpaint import dilate

from .artifacts import PREFIX, ArtifactStore
from .vlm import Completion

MIN_AREA, MAX_AREA = 0.008, 0.85  # share of the image; a retina scan or a colour wheel fills three quarters
CONTRAST = 25.0  # mean Lab distance from the nearest border colour that always makes a region a candidate
BLOB_AREA = 0.02  # smallest salient blob (of the fallback) worth a layer
MIN_MASK = 0.005  # a mask smaller than this share of the image is not worth a layer
BORDER_SHARE = 0.15  # a border colour counts as background when it covers this share of the border
STOP_SCORE = 0.2  # stop once the best candidate is this much weaker than the first one was


def _kmeans(x: np.ndarray, k: int, iters: int = 12) -> np.ndarray:
    """Deterministic k-means (centres start at quantiles of the first channel)."""
    order = np.argsort(x[:, 0], kind="stable")
    centers = x[order[np.linspace(0, len(x) - 1, k).astype(int)]].copy()
    for _ in range(iters):
        d = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
        lab = d.argmin(1)
        for j in range(k):
            if (lab == j).any():
                centers[j] = x[lab == j].mean(0)
    return centers


def saliency(rgb: np.ndarray) -> np.ndarray:
    """(H, W) distance in Lab from the nearest border colour, smoothed."""
    from skimage.color import rgb2lab
    from skimage.filters import gaussian

    lab = rgb2lab(rgb)
    h, w = rgb.shape[:2]
    band = max(2, round(0.05 * min(h, w)))
    border = np.concatenate([lab[:band].reshape(-1, 3), lab[-band:].reshape(-1, 3),
                             lab[:, :band].reshape(-1, 3), lab[:, -band:].reshape(-1, 3)])
    sample = border[:: max(1, len(border) // 4000)]
    centers = _kmeans(sample, 6)
    # a colour seen on only a short stretch of the border is an object the frame cuts, not background
    nearest = ((sample[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
    share = np.bincount(nearest, minlength=len(centers)) / len(sample)
    centers = centers[share >= BORDER_SHARE]
    d = np.sqrt(((lab[..., None, :] - centers) ** 2).sum(-1)).min(-1)
    return gaussian(d, sigma=max(1.0, 0.01 * min(h, w)))


MERGE = 15.0  # Lab distance under which neighbouring superpixels are one colour region
CONTACT = 6  # px of shared boundary before two regions are judged for which is in front


def colour_regions(rgb: np.ndarray) -> np.ndarray:
    """(H, W) labels of colour-coherent regions: SLIC superpixels merged while neighbours' mean Lab
    colours stay within ``MERGE`` of each other, so one object of one colour is one region even
    where it overlaps another."""
    from skimage import graph
    from skimage.color import rgb2lab
    from skimage.segmentation import slic

    h, w = rgb.shape[:2]
    image = rgb.astype(np.float64) / 255 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    lab = rgb2lab(image)
    seg = slic(image, n_segments=int(np.clip(h * w / 80, 100, 900)), compactness=10, start_label=0,
               convert2lab=True)
    rag = graph.rag_mean_color(lab, seg)

    def weight(g, src, dst, n):  # skimage's callback signatures
        return {"weight": float(np.linalg.norm(g.nodes[dst]["mean color"] - g.nodes[n]["mean color"]))}

    def merge(g, src, dst):
        g.nodes[dst]["total color"] += g.nodes[src]["total color"]
        g.nodes[dst]["pixel count"] += g.nodes[src]["pixel count"]
        g.nodes[dst]["mean color"] = g.nodes[dst]["total color"] / g.nodes[dst]["pixel count"]

    return graph.merge_hierarchical(seg, rag, thresh=MERGE, rag_copy=False, in_place_merge=True,
                                    merge_func=merge, weight_func=weight)


SMOOTH = 4.0  # mean Lab gradient along a shared boundary under which two salient regions are one shaded surface


def join_smooth(rgb: np.ndarray, labels: np.ndarray, sal: np.ndarray, bar: float) -> np.ndarray:
    """``labels`` with neighbouring regions joined where no edge separates them (the mean Lab gradient
    along their shared boundary is under ``SMOOTH``): ``colour_regions`` slices a shaded or
    hue-graded surface into many regions, but it is one object. Only regions on the same side of the
    saliency bar (their mean ``sal`` against ``bar``, as ``find_regions`` judges them) are joined, so
    an object does not seep into the background where its shading fades to the background's colour."""
    from skimage import graph
    from skimage.color import rgb2lab
    from skimage.filters import gaussian, sobel

    if labels.max() == labels.min():
        return labels
    lab = gaussian(rgb2lab(rgb), sigma=1, channel_axis=-1)  # rgb2lab reads uint8 and float alike
    edge = np.sqrt(sum(sobel(lab[..., c]) ** 2 for c in range(3)))
    rag = graph.rag_boundary(labels, edge)
    mean_sal = np.bincount(labels.ravel(), sal.ravel()) / np.maximum(np.bincount(labels.ravel()), 1)
    side = {n: bool(mean_sal[n] >= bar) for n in rag.nodes}
    for a, b, d in rag.edges(data=True):
        if side[a] != side[b]:
            d["weight"] = np.inf
    return graph.cut_threshold(labels, rag, SMOOTH, in_place=True)


def _low_bar(sal: np.ndarray) -> float:
    """The photo's own contrast level (Otsu), never under 14: below it is background."""
    from skimage.filters import threshold_otsu

    return max(float(threshold_otsu(sal)), 14.0)


def _candidate(mask: np.ndarray, sal: np.ndarray, rgb: np.ndarray) -> dict:
    """A candidate region as the planner uses it: box (pixels, half-open), area fraction, score
    (contrast x sqrt(area)), mean colour, centre (relative) and the mask itself."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    frac = float(mask.mean())
    return {"box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1], "area": frac,
            "score": float(sal[mask].mean()) * np.sqrt(frac), "colour": rgb[mask].mean(0),
            "centre": (float(xs.mean()) / w, float(ys.mean()) / h), "mask": mask}


def find_regions(rgb: np.ndarray, sal: np.ndarray | None = None, seen: np.ndarray | None = None) -> list[dict]:
    """Colour regions that stand out from the border colours (the background prior), each with its
    box, area fraction, score, mean colour, centre and mask (``_candidate``); only their ``seen``
    pixels count (default: all)."""
    sal = saliency(rgb) if sal is None else sal
    bar = min(CONTRAST, _low_bar(sal))  # a low-contrast photo (a red saucer on a brown table) sets a lower bar
    labels = join_smooth(rgb, colour_regions(rgb), sal, bar)
    masks = (labels == k for k in np.unique(labels))
    if seen is not None:
        masks = (m & seen for m in masks)
    return [_candidate(m, sal, rgb) for m in masks if MIN_AREA <= m.mean() <= MAX_AREA and sal[m].mean() >= bar]


def salient_blobs(rgb: np.ndarray, sal: np.ndarray | None = None, seen: np.ndarray | None = None) -> list[dict]:
    """Connected salient areas at two contrast levels (whole objects, and their most distinct parts),
    in the same form as ``find_regions`` (``seen`` likewise): the fallback once no colour region stands
    out, because on a low-contrast photo an object is often several weak colour regions that only
    together stand out."""
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops
    from skimage.morphology import closing, disk, opening

    h, w = rgb.shape[:2]
    sal = saliency(rgb) if sal is None else sal
    low = _low_bar(sal)
    above = sal[sal > low]
    levels = [low] + ([max(threshold_otsu(above), low + 6.0)] if above.size > 64 else [])
    radius = max(1, round(0.01 * min(h, w)))
    out = []
    for level in levels:
        above_level = closing(opening(sal > level, disk(radius)), disk(radius))
        blobs = label(above_level if seen is None else above_level & seen)
        for r in regionprops(blobs):
            if BLOB_AREA <= r.area / (h * w) <= MAX_AREA:
                out.append(_candidate(blobs == r.label, sal, rgb))
    return out


def _hull(mask: np.ndarray) -> np.ndarray:
    pts = cv2.findNonZero(mask.astype(np.uint8))
    out = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(out, cv2.convexHull(pts), 1)
    return out.astype(bool)


def _junction_turn(a: np.ndarray, b: np.ndarray, step: int = 4) -> float:
    """How sharply ``a``'s outline turns where it stops running along ``b`` (its T-junctions with
    ``b``), in radians summed over the ends of the shared stretches: an occluded outline turns there
    (its own edge meets the occluder's), an occluder's runs straight on."""
    contours, _ = cv2.findContours(a.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len)[:, 0].astype(np.float64)
    n = len(contour)
    if n < 4 * step:
        return 0.0
    near = dilate(b, 2)[contour[:, 1].astype(int), contour[:, 0].astype(int)]
    total = 0.0
    for i in np.flatnonzero(near != np.roll(near, 1)):  # where a shared stretch starts or ends
        before, after = contour[(i - step) % n] - contour[i], contour[(i + step) % n] - contour[i]
        cos = before @ after / max(np.linalg.norm(before) * np.linalg.norm(after), 1e-9)
        total += np.pi - np.arccos(np.clip(cos, -1, 1))  # 0 when the outline runs straight on
    return total


def in_front(a: np.ndarray, b: np.ndarray) -> bool | None:
    """Whether region ``a`` occludes region ``b`` by boundary ownership: an occluder keeps its own
    (convex) outline, bites a concave notch into what it covers (so it sits inside the other's
    convex hull, not the other way round), and its outline runs straight on through the points where
    the other's turns. None when they barely touch or the cues cancel."""
    if (dilate(a, 1) & b).sum() < CONTACT:
        return None
    a_in_b = (_hull(b) & a).sum() / a.sum()
    b_in_a = (_hull(a) & b).sum() / b.sum()
    vote = (a_in_b - b_in_a) + 0.1 * (_junction_turn(b, a) - _junction_turn(a, b))
    if abs(vote) < 0.02:
        return None
    return bool(vote > 0)


def pick_front(regions: list[dict]) -> dict | None:
    """The nearest region: among the strong regions, one that no touching region is in front of
    (figure-ground by boundary ownership), the strongest such; failing that, the strongest."""
    if not regions:
        return None
    best = max(r["score"] for r in regions)
    strong = sorted((r for r in regions if r["score"] >= 0.25 * best), key=lambda r: -r["score"])
    for r in strong:
        if not any(in_front(o["mask"], r["mask"]) for o in regions if o is not r):
            return r
    return strong[0]


HUE_NAMES = ((15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"), (255, "blue"),
             (290, "purple"), (340, "pink"), (360, "red"))


def _colour_name(hue: float, sat: float, val: float) -> str:
    if val < 0.2:
        return "black"
    if sat < 0.18:
        return "white" if val > 0.85 else "grey"
    return next(n for limit, n in HUE_NAMES if hue * 360 < limit)


MULTI = 0.5  # a region is "multicoloured" when no colour name covers this share of its pixels


def describe(colour: np.ndarray, centre: tuple[float, float], pixels: np.ndarray | None = None) -> str:
    """What can be said of a region without a model: its colour and place ("red region, top left").
    Given its ``pixels``, a region that no one colour dominates (a colour wheel's mean is grey) is
    "multicoloured"."""
    name = _colour_name(*colorsys.rgb_to_hsv(*(float(c) / 255 for c in colour)))
    if pixels is not None and len(pixels):
        sample = pixels[:: max(1, len(pixels) // 2000)].astype(np.float64) / 255
        names = [_colour_name(*colorsys.rgb_to_hsv(*p)) for p in sample]
        if max(names.count(n) for n in set(names)) < MULTI * len(names):
            name = "multicoloured"
    x, y = centre
    row = "top" if y < 1 / 3 else "bottom" if y > 2 / 3 else ""
    col = "left" if x < 1 / 3 else "right" if x > 2 / 3 else ""
    place = f"{row} {col}".strip() or "centre"
    return f"{name} region, {place}"


def _guessed(result: dict) -> bool:
    """Whether the segmenter found nothing from the box alone (its mask is the ellipse inscribed in
    the box, or grew from the box's core taken as the object): without eyes to judge that guess, the
    planner takes the region for no object."""
    return bool(result.get("guessed"))


@dataclass
class HeuristicPlanner:
    store: ArtifactStore
    max_layers: int = 10
    name: str = "heuristic"
    endpoint: str = "builtin"
    _n: int = field(default=0, repr=False)
    _first_best: float | None = field(default=None, repr=False)

    def complete(self, request: dict) -> Completion:
        self._n += 1
        name, args, why = self.decide(request["messages"])
        call = {"id": f"heuristic_{self._n}", "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)}}
        message = {"role": "assistant", "content": None, "reasoning_content": why, "tool_calls": [call]}
        return Completion(message, {"choices": [{"message": message}]}, 0.0)

    def decide(self, messages: list[dict]) -> tuple[str, dict, str]:
        last_call, last_result, last_args, peeled = None, None, {}, 0
        calls, args_of, rejected, box_of, peeled_masks = {}, {}, [], {}, []
        canvas = self._first_image(messages)  # the photo, then each residual: never a tool's mask preview
        for m in messages:
            if m["role"] == "assistant":
                for c in m.get("tool_calls") or []:
                    calls[c["id"]] = c["function"]["name"]
                    args_of[c["id"]] = json.loads(c["function"]["arguments"] or "{}")
            elif m["role"] == "tool":
                last_call = calls.get(m["tool_call_id"])
                last_result = json.loads(m["content"])
                last_args = args_of.get(m["tool_call_id"], {})
                if last_call == "segment" and "mask_id" in last_result:
                    box_of[last_result["mask_id"]] = last_args["bbox_2d"]
                if last_call == "inpaint" and "error" not in last_result:
                    peeled, rejected = peeled + 1, []  # a new residual: earlier rejections are void
                    peeled_masks.append(last_args["mask_id"])
                    canvas = last_result["residual_id"]
                if last_call == "pad_canvas" and "error" not in last_result:
                    canvas = last_result["canvas_id"]
                if last_call == "segment" and (last_result.get("area_fraction", 1.0) < MIN_MASK
                                               or _guessed(last_result)):
                    rejected.append(last_args["bbox_2d"])
                if last_call == "inpaint" and "error" in last_result and last_args.get("mask_id") in box_of:
                    rejected.append(box_of[last_args["mask_id"]])  # refused (all fill, say): look elsewhere
        refused = last_call == "inpaint" and last_args.get("mask_id") in box_of  # its box is rejected: go on
        if last_result is not None and "error" in last_result and not refused:
            return "finish", {"reason": f"{last_call} failed: {last_result['error']}"}, "A tool failed; stopping."
        if last_call == "segment" and last_result["area_fraction"] >= MIN_MASK and not _guessed(last_result):
            name = last_args.get("target") or f"region {peeled + 1}"
            return ("inpaint", {"mask_id": last_result["mask_id"], "layer_name": name, "method": "auto"},
                    f"The {name} is segmented; cut it out as a layer and fill the hole.")
        if peeled >= self.max_layers:
            return "finish", {"reason": "layer limit"}, "The layer limit is reached."
        rgb = self.store.load(canvas, "RGB")
        h, w = rgb.shape[:2]
        sal = saliency(rgb)  # both candidate finders read it
        seen = self._seen(peeled_masks, (h, w))
        regions = [r for r in find_regions(rgb, sal, seen) if self._relative(r["box"], w, h) not in rejected]
        if not regions:  # no single colour region stands out: whole salient areas might
            regions = [r for r in salient_blobs(rgb, sal, seen) if self._relative(r["box"], w, h) not in rejected]
        if regions and self._first_best is None:
            self._first_best = max(r["score"] for r in regions)
        if regions and max(r["score"] for r in regions) < STOP_SCORE * (self._first_best or 0):
            return "finish", {"reason": "what is left stands out much less than the first object did"}, (
                "The remaining regions are weak compared with the first one: only background is left.")
        region = pick_front(regions)
        if region is None:
            return "finish", {"reason": "no salient region left"}, "No region stands out from the border colours."
        bbox = self._relative(region["box"], w, h)
        name = describe(region["colour"], region["centre"], rgb[region["mask"]])
        why = (f"The {name} covers {region['area']:.0%} of the image and stands out from the border colours "
               f"(contrast score {region['score']:.1f}); no region it touches lies in front of it (an occluder keeps "
               f"its own outline and bites a notch into what it covers), so it is taken as the nearest.")
        return "segment", {"target": name, "keywords": name.split()[:1], "bbox_2d": bbox}, why

    def _seen(self, mask_ids: list[str], shape: tuple[int, int]) -> np.ndarray:
        """The residual's pixels outside the holes peeled so far (each mask and the rim the cut mattes
        round it): inside them is fill, an inpainter's copies of nearby things, not objects to find."""
        holes = np.zeros(shape, bool)
        for mask_id in mask_ids:
            mask = self.store.load(mask_id, "L") > 127
            if mask.shape == shape:
                holes |= mask
        return ~dilate(holes, RIM + 1)

    @staticmethod
    def _relative(box: list[int], w: int, h: int) -> list[int]:
        """Pixel box grown by 4% each side, as Qwen's relative 0..1000 box."""
        x0, y0, x1, y1 = box
        mx, my = 0.04 * w, 0.04 * h
        rel = [max(0.0, x0 - mx) / w, max(0.0, y0 - my) / h, min(w, x1 + mx) / w, min(h, y1 + my) / h]
        return [round(1000 * v) for v in rel]

    @staticmethod
    def _first_image(messages: list[dict]) -> str:
        """The artifact URL of the first image in the conversation: the photo the run started from."""
        for m in messages:
            if m["role"] == "user" and isinstance(m.get("content"), list):
                for part in m["content"]:
                    url = part.get("image_url", {}).get("url", "") if part.get("type") == "image_url" else ""
                    if url.startswith(PREFIX):
                        return url
        raise RuntimeError("no image in the conversation")
