"""Server limits and error shapes: requests in flight (503 + Retry-After), unknown routes and bad
query parameters as {"error": …}, corrupt images without Python reprs."""
from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from linker.fronts.server import create_app

DOC = {"id": "d", "text": "Obama went to Paris.", "mentions": [{"start": 0, "end": 5}]}


class Blocking:
    """A linker whose `process` waits for `release` (to hold requests in flight)."""

    def __init__(self, linker):
        self._linker = linker
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self._linker, name)

    def process(self, docs, batch_size=64):
        assert self.release.wait(30)
        return self._linker.process(docs, batch_size)


def test_requests_over_the_limit_get_503_with_retry_after(tiny_linker):
    linker = Blocking(tiny_linker)
    app = create_app(linker, max_in_flight=1)
    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/link", json=DOC)
        deadline = time.time() + 10
        while app.state.in_flight < 1 and time.time() < deadline:
            time.sleep(0.01)
        r = client.post("/link", json=DOC)
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        linker.release.set()
        assert first.result(30).status_code == 200
        assert app.state.in_flight == 0
        assert client.post("/link", json=DOC).status_code == 200


@pytest.fixture(scope="module")
def client(tiny_linker):
    with TestClient(create_app(tiny_linker)) as c:
        yield c


def test_unknown_route_wrong_method_and_bad_query_are_error_objects(client):
    r = client.get("/nowhere")
    assert r.status_code == 404 and "/nowhere" in r.json()["error"] and "POST /link" in r.json()["error"]
    r = client.get("/link")
    assert r.status_code == 405 and set(r.json()) == {"error"}
    r = client.post("/link?html=maybe", json=DOC)
    assert r.status_code == 422 and "html" in r.json()["error"]


@pytest.mark.parametrize("data", [b"definitely not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_corrupt_image_message_has_no_python_repr(client, data):
    doc = {**DOC, "images": [{"id": "x", "data": base64.b64encode(data).decode()}]}
    r = client.post("/link", json=doc)
    assert r.status_code == 422
    message = r.json()["error"]
    assert "images[0]" in message and "BytesIO" not in message and "<" not in message
