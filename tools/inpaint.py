"""The ``inpaint`` tool's image side: fill a hole in the residual image so the next object can be peeled.

LaMa (``tools/lama.py``, its TorchScript file) is the method's inpainter and comes first wherever its
file is found. FLUX.1 Fill (``tools/flux.py``) is the method's second step: the model asks for it
after seeing LaMa's fill, with a prompt of what is behind, and it repaints LaMa's fill; it is first
for outpainting, where there is no fill to look at first. Of the two CPU backends that need no
download, PatchMatch (pypatchmatch) copies real texture from around the hole and is the default
(docs/design.md §8); OpenCV's Telea only diffuses colours inward (blurry) but needs nothing beyond
OpenCV, so it is the last resort. The model is offered only the registered, available backends, and
a Python caller naming a missing one gets a one-line error that says what to use instead.

Every backend returns the pixels outside the hole unchanged, byte for byte: the residual must never
drift where nothing was removed.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import cv2
import numpy as np

from .registry import first_available
from .weights import ModelBackend


class Inpainter(Protocol):
    """What every entry of ``INPAINTERS`` provides; every one is built as ``backend(device=...)``."""

    name: ClassVar[str]
    summary: ClassVar[str]  # what it is good for, in the model's words (the tool description quotes it)
    takes_prompt: ClassVar[bool]  # whether a text prompt steers the fill

    @classmethod
    def available(cls) -> tuple[bool, str]: ...

    def inpaint(self, image: np.ndarray, hole: np.ndarray, seed: int = 0, prompt: str = "") -> np.ndarray:
        """Filled copy of ``image``; ``prompt`` (what is behind) is read only by backends that take one."""


def _check_inputs(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Validated boolean hole; a hole covering everything is refused (nothing to copy or diffuse from)."""
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        raise ValueError(f"image must be an HxWx3 uint8 array, got {getattr(image, 'shape', None)}")
    hole = np.asarray(hole, dtype=bool)
    if hole.shape != image.shape[:2]:
        raise ValueError(f"hole shape {hole.shape} does not match image {image.shape[:2]}")
    if hole.all():
        raise ValueError("the hole covers the whole image; there is nothing left to fill it from")
    return hole


def _keep_outside(image: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Take only the hole from the backend's output, so the outside is guaranteed untouched."""
    return np.where(hole[..., None], filled, image).astype(np.uint8)


class PatchMatchInpainter:
    """PatchMatch (Barnes et al. 2009) through pypatchmatch: fills the hole with patches from the image.

    ``patch_size`` is pypatchmatch's patch *radius*; its default of 15 (31x31 patches) is several times
    slower for little gain on our image sizes, 5 follows texture well enough.
    """

    name: ClassVar[str] = "patchmatch"
    summary: ClassVar[str] = "classical, copies texture from around the hole; good for plain and repetitive backgrounds"
    takes_prompt: ClassVar[bool] = False

    def __init__(self, patch_size: int = 5, device: str = "auto") -> None:  # CPU only: ``device`` is ignored
        self.patch_size = patch_size

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import patchmatch
        except ImportError:
            return False, "python package patchmatch not found: pip install pypatchmatch"
        if not patchmatch.patchmatch_available:
            return False, (f"pypatchmatch's native library did not load from {list(patchmatch.__path__)}: "
                           "pip install --force-reinstall --no-deps --no-cache-dir pypatchmatch")
        return True, f"pypatchmatch {patchmatch.__version__} at {next(iter(patchmatch.__path__))}"

    def inpaint(self, image: np.ndarray, hole: np.ndarray, seed: int = 0, prompt: str = "") -> np.ndarray:
        """Filled copy of ``image``; ``seed`` seeds the randomized search (same seed, same bytes)."""
        import patchmatch

        hole = _check_inputs(image, hole)
        if not hole.any():
            return image.copy()
        patchmatch.set_random_seed(int(seed))
        filled = patchmatch.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255,
                                    patch_size=self.patch_size)
        return _keep_outside(image, filled, hole)


class LamaInpainter(ModelBackend):
    """LaMa through its TorchScript file (``tools.lama``), on ``device``; deterministic, so ``seed`` is unused."""

    name: ClassVar[str] = "lama"
    module: ClassVar[str] = "lama"
    summary: ClassVar[str] = ("LaMa, learnt large-hole inpainting: continues structure and texture from around the "
                              "hole; the best fill for most backgrounds")
    takes_prompt: ClassVar[bool] = False

    def inpaint(self, image: np.ndarray, hole: np.ndarray, seed: int = 0, prompt: str = "") -> np.ndarray:
        """Filled copy of ``image``: LaMa's output in the hole, the input byte for byte outside it."""
        from .lama import fill

        hole = _check_inputs(image, hole)
        if not hole.any():
            return image.copy()
        (model,) = self.loaded()
        return _keep_outside(image, fill(model, image, hole, self.device), hole)


class FluxInpainter(ModelBackend):
    """FLUX.1 Fill (``tools.flux``) painting what ``prompt`` describes, started from LaMa's fill of the
    same hole where LaMa is here and the installed diffusers can (``started_from`` says so), else from
    noise."""

    name: ClassVar[str] = "flux"
    module: ClassVar[str] = "flux"
    summary: ClassVar[str] = ("FLUX.1 Fill, a diffusion model that repaints LaMa's fill as your prompt describes; "
                              "for large holes where LaMa smears or what is behind must be invented")
    takes_prompt: ClassVar[bool] = True

    def __init__(self, device: str = "auto") -> None:
        super().__init__(device)
        self.started_from: str | None = None
        self.offloaded = False

    def inpaint(self, image: np.ndarray, hole: np.ndarray, seed: int = 0, prompt: str = "") -> np.ndarray:
        """Filled copy of ``image``: FLUX's output in the hole, the input byte for byte outside it."""
        from .flux import fill, takes_start

        hole = _check_inputs(image, hole)
        if not hole.any():
            return image.copy()
        pipe, self.offloaded = self.loaded()
        start = None
        if LamaInpainter.available()[0] and takes_start(pipe):
            lama = LamaInpainter(device=self.device)
            start = lama.inpaint(image, hole, seed)
            self.load_seconds += lama.load_seconds
            self.started_from = lama.name
        return _keep_outside(image, fill(pipe, image, hole, prompt, seed, start), hole)


class TeleaInpainter:
    """OpenCV's Telea fast marching: smooth colour diffusion, deterministic, so ``seed`` is unused."""

    name: ClassVar[str] = "telea"
    summary: ClassVar[str] = "smooth colour diffusion, blurry; a last resort for small holes"
    takes_prompt: ClassVar[bool] = False

    def __init__(self, radius: int = 5, device: str = "auto") -> None:  # CPU only: ``device`` is ignored
        self.radius = radius

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if hasattr(cv2, "inpaint"):
            return True, f"cv2.inpaint from OpenCV {cv2.__version__}"
        return False, "cv2 has no inpaint: pip install opencv-python-headless"

    def inpaint(self, image: np.ndarray, hole: np.ndarray, seed: int = 0, prompt: str = "") -> np.ndarray:
        """Filled copy of ``image``."""
        hole = _check_inputs(image, hole)
        if not hole.any():
            return image.copy()
        filled = cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, self.radius,
                             cv2.INPAINT_TELEA)
        return _keep_outside(image, filled, hole)


# Registered backends, by the name the model passes as ``method``.
INPAINTERS: dict[str, type[Inpainter]] = {
    "lama": LamaInpainter,
    "flux": FluxInpainter,
    "patchmatch": PatchMatchInpainter,
    "telea": TeleaInpainter,
}

# What ``method=auto`` tries, best first: FLUX only when the model asks for it, having seen LaMa's fill.
AUTO_ORDER: tuple[str, ...] = ("lama", "patchmatch", "telea")
# What ``pad_canvas`` outpaints with, best first: a new border has no fill to look at first.
OUTPAINT_ORDER: tuple[str, ...] = ("flux", "lama", "patchmatch", "telea")


def choose_inpainter(method: str = "auto", order: tuple[str, ...] = AUTO_ORDER) -> tuple[type[Inpainter], str | None]:
    """Backend class for ``method`` (``auto``: the first of ``order`` that works here) and a note for
    the model when ``auto`` had to settle for less.

    Every failure is a ValueError with one line the model can act on, since it goes back as the tool
    result and the model decides the retry.
    """
    key = str(method).strip().lower()
    if key == "auto":
        backend, note = first_available({name: INPAINTERS[name] for name in order})
        if backend is None:
            raise ValueError(f"no inpainting backend is available: {note}")
        return backend, note
    if key in INPAINTERS:
        backend = INPAINTERS[key]
        ok, why = backend.available()
        if not ok:
            raise ValueError(f"{key} is not available: {why}; call inpaint with method=auto")
        return backend, None
    valid = ", ".join(["auto", *dict.fromkeys([*AUTO_ORDER, *INPAINTERS])])
    raise ValueError(f"unknown inpaint method {method!r}; valid methods: {valid}")


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` grown by ``px`` pixels in every direction (a disc, not a square).

    The hole is grown a little before filling so the object's anti-aliased edge and halo are not
    copied into the fill as a ghost outline.
    """
    mask = np.asarray(mask, dtype=bool)
    if px <= 0:
        return mask.copy()
    # A true disc: OpenCV's MORPH_ELLIPSE kernels are flattened at small sizes (5x5 and 7x7 miss pixels).
    r = np.arange(-px, px + 1)
    kernel = (r[:, None] ** 2 + r[None, :] ** 2 <= px * px).astype(np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` shrunk by ``px`` pixels (the twin of ``dilate``; the canvas edge does not eat into it)."""
    mask = np.asarray(mask, dtype=bool)
    if px <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
