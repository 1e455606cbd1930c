"""Content-addressed images of a run: ``RUN_DIR/artifacts/<sha256>.png``.

Graph state, traces and model requests refer to images only by these ids, never by pixels or
base64, so state stays JSON, traces stay small, and a replay can check that the same inputs came
back (same bytes, same id).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tools.atomic import write_bytes_atomic
from tools.image import decode_png, encode_png

PREFIX = "artifact://"


class ArtifactStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir) / "artifacts"
        self.dir.mkdir(parents=True, exist_ok=True)

    def put_bytes(self, png: bytes) -> str:
        digest = hashlib.sha256(png).hexdigest()
        path = self.dir / f"{digest}.png"
        if not path.exists():
            write_bytes_atomic(path, png)
        return digest

    def put(self, array: np.ndarray) -> str:
        """Store an image; returns its id (the sha256 of its PNG bytes)."""
        return self.put_bytes(encode_png(array))

    def path(self, artifact_id: str) -> Path:
        aid = artifact_id.removeprefix(PREFIX)
        p = self.dir / f"{aid}.png"
        if not p.exists():
            raise KeyError(f"no artifact {aid} in {self.dir}")
        return p

    def bytes(self, artifact_id: str) -> bytes:
        return self.path(artifact_id).read_bytes()

    def load(self, artifact_id: str, mode: str | None = None) -> np.ndarray:
        """uint8 array of the stored image, converted to ``mode`` when given."""
        return decode_png(self.path(artifact_id), mode)

    def load_float(self, artifact_id: str, mode: str | None = None) -> np.ndarray:
        return self.load(artifact_id, mode).astype(np.float32) / 255
