"""Image decoding limits: the process-wide pixel budget, header-first size checks without
Pillow's bomb warning, and add-faces folder names resolved through the KB's alias lookup."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.faces import _resolve_entities, build_face_index

from indexer.images import PixelBudget, image_size, load_image
from kb.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_pixel_budget_bounds_concurrent_reservations():
    budget = PixelBudget(100)
    peak, lock = [0], threading.Lock()

    def work(n):
        with budget.reserve(n):
            with lock:
                peak[0] = max(peak[0], budget.used)
            time.sleep(0.02)

    threads = [threading.Thread(target=work, args=(n,)) for n in (60, 60, 30, 500, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] <= 100 and budget.used == 0  # the 500 ran alone, counted as the whole budget


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares `width`x`height` (no pixel data)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_oversized_image_refused_from_the_header_without_bomb_warning(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(10_000, 10_000))  # 100 MP: over Pillow's warning threshold
    with pytest.raises(InputError, match="10000x10000 is over the 50 megapixel limit"):
        image_size(path)
    # a fresh process: pytest restores the warning filters a module sets while imported in a test
    code = f"from indexer.images import load_image\ntry: load_image({str(path)!r})\nexcept Exception as e: print(e)"
    proc = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "megapixel limit" in proc.stdout and "DecompressionBomb" not in proc.stderr, proc.stderr


def test_image_size_reads_the_header(tmp_path):
    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    assert image_size(tmp_path / "a.png") == (64, 48)
    assert load_image(tmp_path / "a.png").shape == (48, 64, 3)


class _NoFaces:
    model_id, dim = "fake", 4

    def detect(self, image):
        return []

    def embed(self, image, boxes):
        return np.zeros((len(boxes), 4), np.float32)


def test_folder_names_resolved_through_alias_lookup_when_unambiguous(tiny_kb_path):
    from kb.store import KnowledgeBase

    kb = KnowledgeBase(tiny_kb_path)
    out = _resolve_entities(kb, {"Q76", "kit_harington", "merkel", "obama", "nobody"})
    assert out["Q76"] == kb.idx_of("Q76")
    assert out["kit_harington"] == kb.idx_of("Q3772") and out["merkel"] == kb.idx_of("Q567")
    assert "ambiguous" in out["obama"] and "Barack Obama (Q76)" in out["obama"] and "Michelle Obama" in out["obama"]
    assert out["nobody"] == "not in the KB"


def test_add_faces_that_adds_nothing_is_an_error_listing_why(tmp_path, tiny_kb_path):
    from kb.store import KnowledgeBase

    for folder in ("obama", "nobody"):
        (tmp_path / "g" / folder).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "g" / folder / "a.png")
    with pytest.raises(InputError, match=r"no face added from .*2 image\(s\) skipped \(unknown entity: 2, e\.g\. "):
        build_face_index(KnowledgeBase(tiny_kb_path), _NoFaces(), tmp_path / "g", tmp_path / "kb", progress=False)
    assert not (tmp_path / "kb" / "faces.faiss").exists()
    with pytest.raises(InputError, match="names no images"):
        build_face_index(KnowledgeBase(tiny_kb_path), _NoFaces(), tmp_path / "kb", tmp_path / "kb", progress=False)
