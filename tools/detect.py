"""Open-vocabulary detection: the model's words in, a box out (the ``segment`` tool's optional first step).

The registry is empty in this build: GroundingDINO joins it later. Until then the model's own
``bbox_2d`` is the box, and the ``segment`` tool's schema makes it required, so the model is never
promised a detector this machine does not have.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np

Box = tuple[int, int, int, int]


class Detector(Protocol):
    """What every entry of ``DETECTORS`` provides."""

    name: ClassVar[str]

    @classmethod
    def available(cls) -> tuple[bool, str]: ...

    def detect(self, image: np.ndarray, target: str, keywords: list[str]) -> Box | None: ...


DETECTORS: dict[str, type[Detector]] = {}
