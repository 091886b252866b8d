"""A real `mmel serve`: uvicorn in a subprocess on a free loopback port, a KB with a dlib face
index, one POST /link with an inline image; the face is linked (not a TestClient, not mocked)."""
from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_visual import GALLERY, PROBE, _build_home

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not GALLERY.is_dir(), reason="shared face gallery not present")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_links_a_face_over_http(tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    home = tmp_path / "home"
    _build_home(home)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "--home", str(home), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[0][-2000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not answer /health within 90 s"
            time.sleep(0.2)
        image = base64.b64encode((GALLERY / PROBE["Q6279"]).read_bytes()).decode()
        doc = {"id": "1", "text": "Biden at the rally.", "mentions": [{"start": 0, "end": 5}],
               "images": [{"id": "a", "data": image}]}
        r = httpx.post(f"{url}/link", json=doc, timeout=60)
        assert r.status_code == 200, r.text
        out = r.json()
        assert [(f["image"], f["entity"]) for f in out["faces"]] == [("a", "Q6279")], out
        assert [m["surface"] for m in out["mentions"]] == ["Biden"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
