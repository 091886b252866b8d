"""The per-KB face index, and adding faces to it.

The face index `<kb_dir>/faces.faiss` is an exact `IndexIDMap(IndexFlatL2)` over raw dlib
descriptors (not normalised, so distances keep dlib's 0.6 scale), with the KB entity idx as
FAISS id; an entity may have several faces. `faces.json` is its manifest (model id, dim,
count, KB checksum, entities covered, source image of every row). Images are read by
`indexer.images`, faces found and embedded by an `indexer.face_encoders.FaceEncoder`.
"""
from __future__ import annotations

import json
import logging
import os
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np
from tqdm import tqdm

from indexer.dense import read_checked, write_checked
from indexer.face_encoders import DlibFaceEncoder, FaceEncoder
from indexer.images import IMAGE_SUFFIXES, load_image
from kb.errors import InputError, ModelLoadError
from kb.files import not_utf8
from kb.lock import WriteLock

if TYPE_CHECKING:
    from kb.store import KnowledgeBase

log = logging.getLogger(__name__)

FACE_INDEX = "faces"
_EXAMPLES = 5


def load_face_encoder(model: str | os.PathLike | None = None) -> FaceEncoder:
    """`None`/'dlib' → dlib's ResNet encoder; a folder written by `mmel train-faces` → the
    paper's face transformer (`indexer.face_transformer`)."""
    if model is None or str(model) in ("dlib", DlibFaceEncoder.model_id):
        return DlibFaceEncoder()
    if Path(model).is_dir():
        from indexer.face_transformer import TransformerFaceEncoder

        return TransformerFaceEncoder(model)
    raise ModelLoadError(
        f"unknown face model {str(model)!r}: choose 'dlib' or a folder trained with `mmel train-faces`"
    )


# -- the face index ---------------------------------------------------------------------------


class FaceIndex:
    """Exact L2 search over face descriptors; ids are KB entity idxs (repeats allowed)."""

    def __init__(self, dim: int, manifest: dict | None = None, index: faiss.Index | None = None):
        self.index = index if index is not None else faiss.IndexIDMap(faiss.IndexFlatL2(dim))
        self.manifest = dict(manifest or {})
        self.manifest.setdefault("sources", [])
        self._refresh()

    def _refresh(self) -> None:
        n = self.index.ntotal
        inner = faiss.downcast_index(self.index.index)
        self._vectors = inner.reconstruct_n(0, n) if n else np.zeros((0, self.index.d), np.float32)
        self._owners = faiss.vector_to_array(self.index.id_map).astype(np.int64)

    @property
    def dim(self) -> int:
        return self.index.d

    def __len__(self) -> int:
        return self.index.ntotal

    def add(self, vectors: np.ndarray, entity_idxs: np.ndarray, sources: list[str]) -> None:
        self.index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(entity_idxs, dtype=np.int64)
        )
        self.manifest["sources"].extend(sources)
        self._refresh()

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`(distances, entity_idxs)` of the `k` nearest stored faces; Euclidean distances
        (dlib scale: < 0.6 is the same person); missing slots have id -1 and distance inf."""
        q = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if len(self) == 0:
            return np.full((len(q), k), np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        d2, ids = self.index.search(q, int(k))
        dist = np.sqrt(np.maximum(d2, 0))
        dist[ids < 0] = np.inf
        return dist, ids

    def vectors_for(self, entity_idx: int) -> np.ndarray:
        """All stored face descriptors of one entity, `(m, dim)` (m = 0 if it has none)."""
        return self._vectors[self._owners == int(entity_idx)]

    def entities(self) -> np.ndarray:
        """The distinct entity idxs that have at least one face."""
        return np.unique(self._owners)

    def save(self, directory: str | os.PathLike, manifest: dict | None = None) -> Path:
        self.manifest.update(manifest or {})
        self.manifest.update(dim=self.dim, count=len(self), metric="l2", kind="flat",
                             entities=int(len(self.entities())))
        return write_checked(self.index, directory, FACE_INDEX, self.manifest)

    @classmethod
    def load(cls, directory: str | os.PathLike, expect: dict | None = None) -> FaceIndex:
        path, manifest = read_checked(directory, FACE_INDEX, expect, "face index",
                                      "add faces with `mmel kb add-faces` (--rebuild to start afresh)")
        return cls(manifest["dim"], manifest, faiss.read_index(str(path)))


def load_face_index(kb: KnowledgeBase, kb_dir: str | os.PathLike, model_id: str | None = None) -> FaceIndex:
    """The face index of `kb`; refuses one built for another KB (or another `model_id`, if given)."""
    return FaceIndex.load(kb_dir, expect={"kb_checksum": kb.checksum, "model_id": model_id})


# -- building ---------------------------------------------------------------------------------


def _read_source(source: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """`(entity ref, image path)` pairs from a gallery folder or a JSONL manifest, and bad lines."""
    if source.is_dir():
        pairs = [
            (sub.name, f)
            for sub in sorted(p for p in source.iterdir() if p.is_dir())
            for f in sorted(sub.iterdir())
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        ]
        return pairs, []
    if source.is_file() and source.suffix.lower() in (".jsonl", ".json"):
        pairs, bad = [], []
        try:
            text = source.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise not_utf8(source, "face manifest") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                pairs.append((str(rec["entity"]), source.parent / rec["image"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                bad.append(f"{source}:{n}")
        return pairs, bad
    raise InputError(
        f"{source}: expected a folder <entity>/<image files> or a JSONL manifest of "
        '{"entity": ..., "image": ...} lines'
    )


def _resolve_entities(kb: KnowledgeBase, refs: set[str]) -> dict[str, int | str]:
    """Entity idx for each ref: by id, else by exact name (or with '_' read as ' '), else by
    the KB's alias lookup when it names exactly one entity (a folder `kit_harington`); for the
    others, why not (a string: unknown, or the entities an ambiguous name may be)."""
    out: dict[str, int | str] = {}
    wanted: dict[str, set[str]] = defaultdict(set)
    for r in refs:
        idx = kb.idx_of(r)
        if idx is not None:
            out[r] = idx
        else:
            wanted[r].add(r)
            wanted[r.replace("_", " ")].add(r)
    if wanted:
        hits: dict[str, list[int]] = defaultdict(list)
        for idx, ent in kb.iter_entities():
            if ent.name in wanted:
                hits[ent.name].append(idx)
        for name, idxs in hits.items():
            for r in wanted[name]:
                if r not in out and len(idxs) == 1:
                    out[r] = idxs[0]
    for r in refs - out.keys():
        cands = kb.lookup(r.replace("_", " "), k=4)
        if len(cands) == 1:
            out[r] = kb.idx_of(cands[0].entity)
        else:
            named = ", ".join(f"{c.name} ({c.entity})" for c in cands[:3])
            out[r] = f"ambiguous name, may be {named}: use the entity id" if cands else "not in the KB"
    return out


def _embed_new_faces(pairs: list[tuple[str, Path]], resolved: dict, known: set[str], encoder: FaceEncoder,
                     skipped: dict[str, list[str]], progress: bool) -> tuple[list, list, list]:
    """The face vectors, entity idxs and source paths of the images of `pairs` that show exactly
    one face of a known entity and are not in `known` yet; the others are added to `skipped`."""
    vectors, owners, sources = [], [], []
    for ref, path in tqdm(pairs, desc="faces", unit=" images", disable=not progress):
        key = str(path.resolve())
        if isinstance(resolved[ref], str):  # why it did not resolve
            skipped["unknown_entity"].append(f"{ref} ({resolved[ref]}): {path}")
            continue
        if key in known:
            skipped["already_indexed"].append(str(path))
            continue
        try:
            image = load_image(path)
        except InputError as exc:
            skipped["unreadable"].append(str(exc))
            continue
        boxes = encoder.detect(image)
        if len(boxes) != 1:
            skipped["no_face" if not boxes else "several_faces"].append(str(path))
            continue
        vectors.append(encoder.embed(image, boxes)[0])
        owners.append(resolved[ref])
        sources.append(key)
        known.add(key)
    return vectors, owners, sources


def build_face_index(
    kb: KnowledgeBase,
    encoder: FaceEncoder,
    source: str | os.PathLike,
    kb_dir: str | os.PathLike,
    progress: bool = True,
    rebuild: bool = False,
) -> dict:
    """Detect and embed one face per image of `source` and add it to `<kb_dir>/faces.faiss`.

    `source`: a folder `<entity>/<images>` (entity = QID, exact name, or a name the KB's alias
    lookup gives exactly one entity for, with '_' read as ' ') or a JSONL manifest
    `{"entity": ..., "image": path relative to the manifest}`. Extends an existing index for
    the same KB and encoder (images already in it are skipped) unless `rebuild`. Images
    without a face, with several faces, unreadable, or of unknown entities are skipped and
    reported (counts + examples); `InputError` if no image of `source` was added or was already
    in it. Holds the KB's write lock (`KBBusyError` if another process writes it). Returns the
    report.
    """
    source, kb_dir = Path(source), Path(kb_dir)
    pairs, bad_lines = _read_source(source)
    if not pairs:
        raise InputError(f"{source} names no images (expected {', '.join(sorted(IMAGE_SUFFIXES))} files)")
    with WriteLock(kb_dir, "given faces"):
        skipped = {"bad_manifest_line": bad_lines} if bad_lines else {}
        resolved = _resolve_entities(kb, {ref for ref, _ in pairs})
        return _add_faces(kb, encoder, source, kb_dir, pairs, resolved, skipped, progress, rebuild)


def commons_key(file_name: str) -> str:
    """The Wikimedia Commons form of an image file name, for matching: Unicode NFC, underscores
    read as spaces, runs of spaces as one, the first letter upper case (Commons titles are
    case-sensitive after it), e.g. `douglas_adams  portrait.jpg` → `Douglas adams portrait.jpg`."""
    name = " ".join(unicodedata.normalize("NFC", file_name).replace("_", " ").split())
    return name[:1].upper() + name[1:]


def kb_image_pairs(kb: KnowledgeBase, image_dir: str | os.PathLike) -> tuple[list[tuple[str, Path]], dict, list[str]]:
    """`(entity id, image path)` for each image file name of the KB's entities (Wikidata P18)
    found in `image_dir` or its subfolders (names compared by `commons_key`), the entity idx of
    each id, and the file names not found (as `id: name`). `InputError` if `image_dir` is no
    folder, the KB names no images, or none of them is in `image_dir`."""
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise InputError(f"{image_dir}: no such folder (expected a folder of Commons image files named as in P18)")
    files: dict[str, Path] = {}
    for f in sorted(image_dir.rglob("*")):
        if f.is_file():
            files.setdefault(commons_key(f.name), f)
    pairs, resolved, missing, named = [], {}, [], 0
    for idx, ident, images in kb.entity_images():
        for name in images:
            named += 1
            path = files.get(commons_key(name))
            if path is None:
                missing.append(f"{ident}: {name}")
            else:
                pairs.append((ident, path))
                resolved[ident] = idx
    if named == 0:
        raise InputError(
            f"KB {kb.path} has no entity images (Wikidata P18): build it with `mmel kb build --wikidata`, "
            'or an entity list with "images", to use --from-kb'
        )
    if not pairs:
        raise InputError(
            f"none of the {named:,} image files the KB names is in {image_dir} (e.g. {missing[0].split(': ', 1)[1]!r}; "
            "names are matched as on Commons, spaces and underscores alike)"
        )
    return pairs, resolved, missing


def build_face_index_from_kb(
    kb: KnowledgeBase,
    encoder: FaceEncoder,
    image_dir: str | os.PathLike,
    kb_dir: str | os.PathLike,
    progress: bool = True,
    rebuild: bool = False,
) -> dict:
    """As `build_face_index`, with the images the KB's entities name (Wikidata P18) that are in
    `image_dir` (a folder of downloaded Commons files, subfolders included; see `kb_image_pairs`);
    the file names not found there are counted in the report (`skipped.image_not_found`)."""
    image_dir, kb_dir = Path(image_dir), Path(kb_dir)
    pairs, resolved, missing = kb_image_pairs(kb, image_dir)
    with WriteLock(kb_dir, "given faces"):
        skipped = {"image_not_found": missing} if missing else {}
        return _add_faces(kb, encoder, image_dir, kb_dir, pairs, resolved, skipped, progress, rebuild)


def _add_faces(kb, encoder, source: Path, kb_dir: Path, pairs, resolved: dict, pre_skipped: dict[str, list[str]],
               progress: bool, rebuild: bool) -> dict:
    expect = {"kb_checksum": kb.checksum, "model_id": encoder.model_id}
    if not rebuild and (kb_dir / f"{FACE_INDEX}.faiss").exists():
        index = FaceIndex.load(kb_dir, expect=expect)
    else:
        index = FaceIndex(encoder.dim, expect)
    known = set(index.manifest["sources"])
    skipped: dict[str, list[str]] = defaultdict(list, pre_skipped)
    vectors, owners, sources = _embed_new_faces(pairs, resolved, known, encoder, skipped, progress)
    for reason, items in skipped.items():
        log.warning("skipped %d image(s): %s, e.g. %s", len(items), reason.replace("_", " "), "; ".join(items[:2]))
    if not vectors and "already_indexed" not in skipped:  # nothing of `source` is in the index
        why = "; ".join(f"{r.replace('_', ' ')}: {len(v)}, e.g. {v[0]}" for r, v in skipped.items())
        raise InputError(f"no face added from {source}, {len(pairs)} image(s) skipped ({why})")
    if vectors:
        index.add(np.vstack(vectors), np.asarray(owners), sources)
    index.save(kb_dir, expect)
    return {
        "source": str(source),
        "images": len(pairs),
        "added": len(vectors),
        "faces_total": len(index),
        "entities_total": int(len(index.entities())),
        "skipped": {r: {"count": len(v), "examples": v[:_EXAMPLES]} for r, v in skipped.items()},
        "index": str(kb_dir / f"{FACE_INDEX}.faiss"),
    }
