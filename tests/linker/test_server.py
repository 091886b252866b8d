"""HTTP API: endpoints, limits, error statuses, concurrency, the `serve` CLI, and a hypothesis
fuzz test that malformed documents get a 4xx (never a 5xx) and the server keeps serving."""
from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from linker.fronts.server import create_app


@pytest.fixture(scope="module")
def client(tiny_linker):
    with TestClient(create_app(tiny_linker, max_body_bytes=200_000, max_image_pixels=1_000_000)) as c:
        yield c


def _png(size=(120, 90)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_health_reports_kb_and_models(client, tiny_linker):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["kb"]["entities"] == len(tiny_linker.kb) == 12
    assert body["models"]["text_encoder"] == "hashing:64"
    assert body["models"]["text_index"]["count"] == 12


def test_entities_found_and_404(client):
    r = client.get("/entities/Q76")
    assert r.status_code == 200 and r.json()["name"] == "Barack Obama"
    r = client.get("/entities/Q999999")
    assert r.status_code == 404 and "Q999999" in r.json()["error"]
    assert client.get("/entities/%ED%A0%80").status_code == 404
    assert client.get("/entities/a%00b").status_code == 404


def test_link_with_given_mentions_matches_python_api(client, tiny_linker):
    from linker.document import document_record, parse_document

    obj = {"id": "d1", "text": "Obama went to Paris.", "mentions": [{"start": 0, "end": 5}, {"start": 14, "end": 19}]}
    r = client.post("/link", json=obj)
    assert r.status_code == 200
    doc = parse_document(obj)
    assert r.json() == json.loads(json.dumps(document_record(doc, tiny_linker.link(doc))))
    assert [m["surface"] for m in r.json()["mentions"]] == ["Obama", "Paris"]


def test_link_detects_mentions(client):
    r = client.post("/link", json={"id": "d", "text": "Angela Merkel met Joe Biden in Berlin."})
    assert r.status_code == 200
    assert {"Angela Merkel", "Joe Biden", "Berlin"} <= {m["surface"] for m in r.json()["mentions"]}


def test_link_html_view(client):
    obj = {"id": "d", "text": "<b>Obama</b> in Paris", "mentions": [{"start": 3, "end": 8}],
           "images": [{"id": "img0", "data": _png()}]}
    r = client.post("/link?html=true", json=obj)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<b>Obama" not in r.text and "&lt;b&gt;" in r.text
    assert '<mark class="m ' in r.text and "data:image/" in r.text


def test_inline_image_accepted_and_reported(client):
    r = client.post("/link", json={"id": "d", "text": "Obama", "images": [{"id": "x", "data": "data:image/png;base64," + _png()}]})
    assert r.status_code == 200
    assert r.json()["faces"] == []  # the tiny KB has no face index: no faces linked, and no error


@pytest.mark.parametrize("obj, status, needle", [
    ({"text": 5}, 422, "'text'"),
    ({"text": "abc", "mentions": [{"start": 2, "end": 9}]}, 422, "[2, 9)"),
    ({"text": "abc", "mentions": [{"start": "0", "end": 1}]}, 422, "start"),
    ({"text": "abc", "mentions": "all"}, 422, "mentions"),
    ([1, 2], 422, "expected a JSON object"),
    ({"text": "abc", "images": [{"id": "a", "path": "/etc/passwd"}]}, 403, "local"),
    ({"text": "abc", "images": [{"id": "a", "data": "!!notbase64"}]}, 422, "base64"),
    ({"text": "abc", "images": [{"id": "a", "data": base64.b64encode(b"not an image").decode()}]}, 422, "image"),
    ({"text": "abc", "images": [{"id": "a", "data": 7}]}, 422, "base64 string"),
    ({"text": "\ud800 x"}, 422, "surrogate"),
    ({"text": "a" * 10, "mentions": [{"start": 0, "end": 1}] * 1001}, 422, "limit is 1000"),
    ({"text": "Barack Obama met Angela Merkel. " * 501}, 422, "1002 mentions detected"),
])
def test_invalid_documents_are_4xx_with_a_message(client, obj, status, needle):
    r = client.post("/link", content=json.dumps(obj).encode())
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


@pytest.mark.parametrize("body, needle", [
    (b"", "empty"), (b"{", "not valid JSON"), (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 50_000 + b"]" * 50_000, "JSON"), (b'{"text": 1' + b"0" * 5000 + b"}", "JSON"),
])
def test_bad_json_is_400(client, body, needle):
    r = client.post("/link", content=body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]


def test_body_and_image_limits_are_413(client):
    r = client.post("/link", json={"text": "x" * 300_000})
    assert r.status_code == 413 and "200000" in r.json()["error"]
    # a chunked body (no Content-Length) is counted while it streams
    r = client.post("/link", content=iter([b'{"text": "', b"x" * 150_000, b"x" * 150_000, b'"}']))
    assert r.status_code == 413
    r = client.post("/link", json={"text": "x", "images": [{"id": "big", "data": _png((1200, 1000))}]})
    assert r.status_code == 413 and "1200x1000" in r.json()["error"]


def test_local_images_allowed_when_enabled(tiny_linker, tmp_path):
    path = tmp_path / "p.png"
    Image.new("RGB", (50, 40), (1, 2, 3)).save(path)
    with TestClient(create_app(tiny_linker, allow_local_images=True)) as c:
        r = c.post("/link?html=true", json={"text": "Obama", "images": [{"id": "p", "path": str(path)}]})
    assert r.status_code == 200 and "data:image/" in r.text


def test_concurrent_requests_give_sequential_results(client):
    texts = ["Obama went to Paris.", "Merkel in Berlin and Germany.", "Paris Hilton met Donald Trump.",
             "Joe Biden and Michelle Obama in the United States."]
    expected = {t: client.post("/link", json={"id": t, "text": t}).json() for t in texts}
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda t: (t, client.post("/link", json={"id": t, "text": t})), texts * 10))
    for t, r in got:
        assert r.status_code == 200 and r.json() == expected[t]


# any code points, lone surrogates included (valid as JSON escapes, not encodable as UTF-8)
_any_text = st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=30).map("".join)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | _any_text,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
_int = st.integers() | st.integers(-3, 40) | st.just(True) | st.floats() | st.text(max_size=3) | st.none()
_mention = st.fixed_dictionaries({"start": _int, "end": _int}) | _json
_image = st.fixed_dictionaries({}, optional={
    "id": _json, "data": st.text(max_size=40) | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()) | _json,
    "path": st.text(max_size=20) | _json})
_doc = st.fixed_dictionaries({}, optional={
    "id": _json,
    "text": st.text(max_size=40) | _any_text | _json | st.just("x" * 50_000) | st.just("Obama Paris " * 150),
    "mentions": st.lists(_mention, max_size=6) | _json,
    "images": st.lists(_image, max_size=3) | _json,
})
# mostly malformed documents, plus malformed bodies
_body = (_doc.map(lambda d: json.dumps(d).encode()) | _json.map(lambda v: json.dumps(v).encode())
         | st.binary(max_size=60) | st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")))


@pytest.fixture(scope="module")
def fuzz_client(tiny_linker):
    with TestClient(create_app(tiny_linker, max_body_bytes=200_000), raise_server_exceptions=False) as c:
        yield c


def _check_4xx(client, body: bytes, html: bool) -> None:
    r = client.post("/link?html=true" if html else "/link", content=body)
    assert r.status_code < 500, (body[:200], r.text[:300])
    if r.status_code >= 400:
        assert set(r.json()) == {"error"} and "\n" not in r.json()["error"]


_FUZZ = dict(deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=1000, derandomize=True, **_FUZZ)
@given(body=_body, html=st.booleans())
def test_fuzz_never_5xx(fuzz_client, body, html):
    _check_4xx(fuzz_client, body, html)


@pytest.mark.slow
@settings(max_examples=5_000, database=None, **_FUZZ)
@given(body=_body, html=st.booleans())
def test_fuzz_never_5xx_long(fuzz_client, body, html):
    _check_4xx(fuzz_client, body, html)


def test_still_serving_after_fuzz(fuzz_client):
    assert fuzz_client.get("/health").json()["status"] == "ok"
    r = fuzz_client.post("/link", json={"text": "Obama", "mentions": [{"start": 0, "end": 5}]})
    assert r.status_code == 200 and r.json()["mentions"][0]["surface"] == "Obama"


def test_serve_cli_help_and_bad_kb(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["serve", "--help"])
    assert r.exit_code == 0 and "--allow-local-images" in r.output and "/link" in r.output
    r = runner.invoke(app, ["serve", "--home", str(tmp_path), "--kb", "nope"])
    assert r.exit_code != 0 and "no knowledge base" in str(r.exception)


def test_set_threads_validates():
    from kb.errors import ConfigError
    from linker.fronts.server import set_threads

    with pytest.raises(ConfigError, match="got -1"):
        set_threads(-1)
