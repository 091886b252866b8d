"""The paper's face transformer as a face encoder: adapter, training command, calibration.

`TransformerFaceEncoder` detects faces with dlib and embeds aligned crops with the 6-layer,
64-patch transformer of `indexer.face_model`; `train_faces` trains one on a gallery
`<person>/<images>` and calibrates its same-person distance. `indexer.faces.load_face_encoder`
returns one for a trained model folder.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from indexer.face_encoders import SAME_PERSON_DISTANCE, DlibFaceEncoder, FaceEncoder

from indexer.images import IMAGE_SUFFIXES, load_image
from kb.errors import InputError

CALIBRATION_FILE = "calibration.json"
TRANSFORMER_PREFIX = "face-transformer-"


def calibrate_threshold(same: np.ndarray, different: np.ndarray) -> float:
    """The distance cut-off with the best accuracy on labelled pairs (same person: `d < t`).

    Candidates are midpoints between consecutive sorted distances; ties go to the midpoint of
    the best run. Raises `InputError` without both kinds of pairs.
    """
    same, different = np.asarray(same, float).ravel(), np.asarray(different, float).ravel()
    if not len(same) or not len(different):
        raise InputError(f"need same- and different-person pairs, got {len(same)} and {len(different)}")
    d = np.sort(np.concatenate([same, different]))
    cuts = np.concatenate([[d[0] - 1e-6], (d[:-1] + d[1:]) / 2, [d[-1] + 1e-6]])
    acc = np.array([(same < t).sum() + (different >= t).sum() for t in cuts])
    best = np.flatnonzero(acc == acc.max())
    return float((cuts[best[0]] + cuts[best[-1]]) / 2)



def _model_id(model_dir: Path) -> str:
    from indexer.face_model import WEIGHTS_FILE

    digest = hashlib.sha256((Path(model_dir) / WEIGHTS_FILE).read_bytes()).hexdigest()[:12]
    return TRANSFORMER_PREFIX + digest


class TransformerFaceEncoder:
    """dlib detection, then the paper's face transformer (`indexer.face_model`) on aligned crops.

    `model_id` carries a digest of the weights, so a face index built with one model refuses to
    be searched with another. `threshold` is the same-person distance calibrated at training
    time (`calibration.json`), on the L2 scale of its unit-norm embeddings.
    """

    def __init__(self, model_dir: str | os.PathLike, detector: FaceEncoder | None = None):
        from indexer.face_model import load

        self.path = Path(model_dir)
        self.model = load(self.path)
        self.model_id = _model_id(self.path)
        self.dim = self.model.config.dim
        cal = self.path / CALIBRATION_FILE
        self.threshold = float(json.loads(cal.read_text())["threshold"]) if cal.is_file() else 0.8
        self.detector = detector or DlibFaceEncoder()

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        return self.detector.detect(image)

    def embed(self, image: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
        from indexer.face_model import embed_crops, face_crops

        if not boxes:
            return np.zeros((0, self.dim), np.float32)
        return embed_crops(self.model, face_crops(image, boxes, size=self.model.config.image_size))


def encoder_threshold(encoder: FaceEncoder) -> float:
    """The encoder's same-person distance (dlib: 0.6)."""
    return float(getattr(encoder, "threshold", SAME_PERSON_DISTANCE))


def _gallery_faces(gallery: Path, detector: FaceEncoder, size: int, progress: bool):
    from tqdm import tqdm

    from indexer.face_model import face_crops

    if not gallery.is_dir():
        raise InputError(f"{gallery}: expected a folder <person>/<images>")
    files = [f for sub in sorted(p for p in gallery.iterdir() if p.is_dir())
             for f in sorted(sub.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    crops, labels, skipped = [], [], []
    for f in tqdm(files, desc="faces", disable=not progress, unit=" images"):
        try:
            image = load_image(f)
        except InputError as exc:
            skipped.append(str(exc))
            continue
        boxes = detector.detect(image)
        if len(boxes) != 1:
            skipped.append(f"{f}: {len(boxes)} faces")
            continue
        crops.append(face_crops(image, boxes, size=size)[0])
        labels.append(f.parent.name)
    return crops, labels, skipped


def train_faces(
    gallery: str | os.PathLike,
    out: str | os.PathLike,
    epochs: int = 30,
    config=None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train the face transformer on a gallery `<person>/<images>` and save it to `out`.

    Faces are found with dlib (images with no face or several are skipped), cropped with
    `face_crops`, and trained with the batch-hard triplet loss. The NIL threshold is calibrated
    on the gallery's own pairs (optimistic: these are training images) and saved as
    `calibration.json` next to the weights. Returns a report.
    """
    from indexer.face_model import FaceTransformerConfig, embed_crops, save, train_face_transformer

    config = config or FaceTransformerConfig()
    gallery, out = Path(gallery), Path(out)
    crops, labels, skipped = _gallery_faces(gallery, DlibFaceEncoder(), config.image_size, progress)
    if not crops:
        raise InputError(f"{gallery}: no usable face images (skipped {len(skipped)})")
    X, y = np.stack(crops), np.asarray(labels)
    model, history = train_face_transformer(X, y, config, epochs=epochs, seed=seed, progress=progress)
    emb = embed_crops(model, X)
    D = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    iu = np.triu_indices(len(y), 1)
    same = (y[:, None] == y[None])[iu]
    threshold = calibrate_threshold(D[iu][same], D[iu][~same]) if same.any() and (~same).any() else 0.8
    save(model, out)
    (out / CALIBRATION_FILE).write_text(json.dumps({"threshold": threshold}, indent=2) + "\n")
    return {
        "out": str(out), "images": len(X), "identities": int(len(set(labels))), "epochs": epochs,
        "final_loss": round(history[-1].loss, 4), "threshold": round(threshold, 4),
        "model_id": _model_id(out),
        "skipped": skipped,
    }
