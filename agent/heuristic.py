"""The built-in planner for when no vision-language model is reachable.

It answers the same requests a model gets, with the same tool calls, from classical cues: a
region is salient when its colour is far from the colours along the image border (the usual
background prior), and among salient regions the one reaching lowest in the frame is taken as the
nearest (the ground-plane cue for occlusion order). It reads only the conversation (the latest
residual image and the tool results), so the graph, trace and replay treat it exactly like a model.
It cannot read hints; the run reports them as not honoured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .artifacts import PREFIX, ArtifactStore
from .vlm import Completion

MIN_AREA, MAX_AREA = 0.02, 0.7
MIN_MASK = 0.005  # a mask smaller than this share of the image is not worth a layer
STOP_SCORE = 0.5  # stop once the best region is this much weaker than the first one was


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
    centers = _kmeans(border[:: max(1, len(border) // 4000)], 5)
    d = np.sqrt(((lab[..., None, :] - centers) ** 2).sum(-1)).min(-1)
    return gaussian(d, sigma=max(1.0, 0.01 * min(h, w)))


def find_regions(rgb: np.ndarray) -> list[dict]:
    """Salient connected regions at two contrast levels (whole objects, and their most distinct
    parts), each with its box (pixels, half-open), area fraction and score."""
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops
    from skimage.morphology import closing, disk, opening

    h, w = rgb.shape[:2]
    sal = saliency(rgb)
    low = max(threshold_otsu(sal), 14.0)
    above = sal[sal > low]
    levels = [low] + ([max(threshold_otsu(above), low + 6.0)] if above.size > 64 else [])
    radius = max(1, round(0.01 * min(h, w)))
    out = []
    for level in levels:
        binary = closing(opening(sal > level, disk(radius)), disk(radius))
        for r in regionprops(label(binary)):
            frac = r.area / (h * w)
            if not MIN_AREA <= frac <= MAX_AREA:
                continue
            y0, x0, y1, x1 = r.bbox
            score = float(sal[r.coords[:, 0], r.coords[:, 1]].mean()) * np.sqrt(frac)
            out.append({"box": [x0, y0, x1, y1], "area": frac, "score": score})
    return out


def _inside(a: list[int], b: list[int]) -> float:
    """Share of box ``a`` that lies inside box ``b``."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, (a[2] - a[0]) * (a[3] - a[1]))


def pick_front(regions: list[dict]) -> dict | None:
    """The nearest region by two classical cues: a salient region lying within a larger one's box
    sits on it (a cup on a saucer), so it is in front; otherwise the region reaching lowest in the
    frame is nearest (ground plane)."""
    if not regions:
        return None
    best = max(r["score"] for r in regions)
    strong = [r for r in regions if r["score"] >= 0.25 * best]
    stacked = [r for r in strong if any(o is not r and o["area"] > 1.5 * r["area"] and _inside(r["box"], o["box"]) > 0.9
                                        for o in regions)]
    if stacked:
        return max(stacked, key=lambda r: (r["score"], r["box"][3]))
    return max(strong, key=lambda r: (r["box"][3], r["score"]))


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
        last_call, last_result, peeled = None, None, 0
        calls, args_of, rejected = {}, {}, []
        for m in messages:
            if m["role"] == "assistant":
                for c in m.get("tool_calls") or []:
                    calls[c["id"]] = c["function"]["name"]
                    args_of[c["id"]] = json.loads(c["function"]["arguments"] or "{}")
            elif m["role"] == "tool":
                last_call = calls.get(m["tool_call_id"])
                last_result = json.loads(m["content"])
                if last_call == "inpaint" and "error" not in last_result:
                    peeled, rejected = peeled + 1, []  # a new residual: earlier rejections are void
                if last_call == "segment" and last_result.get("area_fraction", 1.0) < MIN_MASK:
                    rejected.append(args_of[m["tool_call_id"]]["bbox_2d"])
        if last_result is not None and "error" in last_result:
            return "finish", {"reason": f"{last_call} failed: {last_result['error']}"}, "A tool failed; stopping."
        if last_call == "segment" and last_result["area_fraction"] >= MIN_MASK:
            k = peeled + 1
            return ("inpaint", {"mask_id": last_result["mask_id"], "layer_name": f"object {k}", "method": "auto"},
                    f"Region {k} is segmented; cut it out as a layer and fill the hole.")
        if peeled >= self.max_layers:
            return "finish", {"reason": "layer limit"}, "The layer limit is reached."
        rgb = self._latest_image(messages)
        h, w = rgb.shape[:2]
        regions = find_regions(rgb)
        regions = [r for r in regions if self._relative(r["box"], w, h) not in rejected]
        if regions and self._first_best is None:
            self._first_best = max(r["score"] for r in regions)
        if regions and max(r["score"] for r in regions) < STOP_SCORE * (self._first_best or 0):
            return "finish", {"reason": "what is left stands out much less than the first object did"}, (
                "The remaining regions are weak compared with the first one: only background is left.")
        region = pick_front(regions)
        if region is None:
            return "finish", {"reason": "no salient region left"}, "No region stands out from the border colours."
        bbox = self._relative(region["box"], w, h)
        why = (f"Salient region covering {region['area']:.0%} of the image (contrast score {region['score']:.1f}); "
               f"it reaches lowest in the frame among the strong candidates, so it is taken as the nearest.")
        return "segment", {"target": f"salient region {peeled + 1}", "keywords": ["object"], "bbox_2d": bbox}, why

    @staticmethod
    def _relative(box: list[int], w: int, h: int) -> list[int]:
        """Pixel box grown by 4% each side, as Qwen's relative 0..1000 box."""
        x0, y0, x1, y1 = box
        mx, my = 0.04 * w, 0.04 * h
        rel = [max(0.0, x0 - mx) / w, max(0.0, y0 - my) / h, min(w, x1 + mx) / w, min(h, y1 + my) / h]
        return [round(1000 * v) for v in rel]

    def _latest_image(self, messages: list[dict]) -> np.ndarray:
        for m in reversed(messages):
            if m["role"] == "user" and isinstance(m.get("content"), list):
                for part in reversed(m["content"]):
                    url = part.get("image_url", {}).get("url", "") if part.get("type") == "image_url" else ""
                    if url.startswith(PREFIX):
                        return self.store.load(url, "RGB")
        raise RuntimeError("no image in the conversation")
