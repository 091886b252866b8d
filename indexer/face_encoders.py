"""Face encoders: detect faces in an RGB image and embed them.

`FaceEncoder` is the pluggable image side (a CLIP-like encoder could implement it later);
`DlibFaceEncoder` uses dlib's HOG frontal face detector, 5-point landmarks and its 128-d ResNet
descriptor (the `face_recognition_models` weights). Two descriptors closer than about 0.6
(Euclidean) are the same person. The paper's trainable face transformer is
`indexer.face_transformer`; `indexer.faces.load_face_encoder` picks one by name.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from indexer.images import DECODE_BUDGET, image_size, load_image
from kb.errors import ModelLoadError


Box = tuple[int, int, int, int]
SAME_PERSON_DISTANCE = 0.6


def image_faces(encoder: FaceEncoder, path: str | os.PathLike) -> tuple[list[Box], np.ndarray]:
    """`(boxes, embeddings)` of the faces in an image file, decoded within `DECODE_BUDGET`;
    the decoded array is dropped before returning. `InputError` if unreadable."""
    width, height = image_size(path)
    with DECODE_BUDGET.reserve(width * height):
        image = load_image(path)
        boxes = encoder.detect(image)
        vectors = encoder.embed(image, boxes) if boxes else np.zeros((0, encoder.dim), np.float32)
        del image
    return boxes, vectors


# -- encoders ---------------------------------------------------------------------------------


@runtime_checkable
class FaceEncoder(Protocol):
    """Finds faces in an RGB uint8 image and embeds them."""

    model_id: str
    dim: int

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes `(left, top, right, bottom)` in the image's own pixel coordinates."""
        ...

    def embed(self, image: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """`(len(boxes), dim)` float32 embeddings, one per box."""
        ...


def _face_model_dir() -> Path:
    # Located without importing the package: its __init__ needs pkg_resources (setuptools < 81).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("package 'face_recognition_models' is not installed: pip install face-recognition-models")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class DlibFaceEncoder:
    """dlib HOG detector + 5-point alignment + ResNet 128-d descriptor.

    Images are downscaled so the longest side is at most `max_side` before detection, and
    small ones (longest side < `upsample_below`) upsampled once by the detector; boxes come
    back in original coordinates.
    """

    model_id = "dlib_face_recognition_resnet_model_v1"
    dim = 128

    def __init__(self, max_side: int = 1024, upsample_below: int = 800, jitters: int = 0):
        import dlib

        models = _face_model_dir()
        shape_path = models / "shape_predictor_5_face_landmarks.dat"
        rec_path = models / "dlib_face_recognition_resnet_model_v1.dat"
        for p in (shape_path, rec_path):
            if not p.is_file():
                raise ModelLoadError(f"face model file missing: {p}")
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(str(shape_path))
        self.recognizer = dlib.face_recognition_model_v1(str(rec_path))
        self.max_side = max_side
        self.upsample_below = upsample_below
        self.jitters = jitters

    def detect(self, image: np.ndarray) -> list[Box]:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = image
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        upsample = 1 if max(small.shape[:2]) < self.upsample_below else 0
        boxes = []
        for r in self.detector(small, upsample):
            box = (
                max(0, round(r.left() / scale)), max(0, round(r.top() / scale)),
                min(w, round(r.right() / scale)), min(h, round(r.bottom() / scale)),
            )
            if box[2] > box[0] and box[3] > box[1]:
                boxes.append(box)
        return boxes

    def embed(self, image: np.ndarray, boxes: list[Box]) -> np.ndarray:
        out = np.zeros((len(boxes), self.dim), dtype=np.float32)
        for i, (left, top, right, bottom) in enumerate(boxes):
            shape = self.shape_predictor(image, self._dlib.rectangle(left, top, right, bottom))
            out[i] = np.asarray(self.recognizer.compute_face_descriptor(image, shape, self.jitters))
        return out

