"""Server docs and access: /docs offline (local assets or a self-contained page), the request-body
schema of /link, the API key (X-API-Key or Bearer, else 401) and the warning for a server beyond
loopback without one."""
from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

import linker.fronts.server as server
from linker.fronts.server import LinkDocument, create_app, is_loopback

DOC = {"id": "d", "text": "Obama went to Paris.", "mentions": [{"start": 0, "end": 5}]}


@pytest.fixture(scope="module")
def client(tiny_linker):
    with TestClient(create_app(tiny_linker)) as c:
        yield c


def _external_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']?(?:https?:)?//[^"' >]+""", html)


def test_docs_serve_swagger_from_local_assets(client):
    assert server.docs_assets() is not None, "fastapi-offline (the serve extra) is not installed"
    r = client.get("/docs")
    assert r.status_code == 200 and "SwaggerUIBundle" in r.text
    assert _external_urls(r.text) == []
    for asset in re.findall(r"""(?:src|href)=["']([^"']+)""", r.text):
        got = client.get(asset)
        assert got.status_code == 200 and len(got.content) > 1000, asset


def test_docs_without_the_package_is_a_self_contained_page(tiny_linker, monkeypatch):
    monkeypatch.setattr(server, "docs_assets", lambda: None)
    with TestClient(create_app(tiny_linker)) as c:
        r = c.get("/docs")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "POST /link" in r.text and "LinkDocument" in r.text and "mentions" in r.text
        assert "<script" not in r.text and _external_urls(r.text) == []
        assert c.get("/docs-assets/swagger-ui.css").status_code == 404


def test_link_has_a_request_body_schema(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/link"]["post"]["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    doc = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert doc["required"] == ["text"] and {"id", "text", "mentions", "images"} <= set(doc["properties"])
    span_ref = doc["properties"]["mentions"]["anyOf"][0]["items"]["$ref"]
    span = schema["components"]["schemas"][span_ref.rsplit("/", 1)[1]]
    assert set(span["required"]) == {"start", "end"}
    image_ref = doc["properties"]["images"]["anyOf"][0]["items"]["$ref"]
    assert {"id", "data", "path"} == set(schema["components"]["schemas"][image_ref.rsplit("/", 1)[1]]["properties"])


def test_schema_examples_are_documents_the_server_links(client):
    for example in LinkDocument.model_json_schema()["examples"]:
        LinkDocument.model_validate(example)
        r = client.post("/link", json=example)
        assert r.status_code == 200 and r.json()["id"] == example["id"]


@pytest.fixture(scope="module")
def keyed(tiny_linker):
    with TestClient(create_app(tiny_linker, api_key="s3cret")) as c:
        yield c


@pytest.mark.parametrize("method,path", [("post", "/link"), ("get", "/health"), ("get", "/entities/Q76"),
                                         ("get", "/nope")])
def test_api_key_required_on_every_request(keyed, method, path):
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                    {"Authorization": "Basic s3cret"}):
        r = getattr(keyed, method)(path, headers=headers, **({"json": DOC} if method == "post" else {}))
        assert r.status_code == 401, headers
        assert "API key" in r.json()["error"] and "\n" not in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"


def test_api_key_accepted_as_header_or_bearer(keyed):
    assert keyed.post("/link", json=DOC, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert keyed.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert keyed.get("/entities/Q76", headers={"authorization": "bearer s3cret"}).json()["name"] == "Barack Obama"


def test_docs_stay_public_and_declare_the_key(keyed):
    assert keyed.get("/docs").status_code == 200
    schema = keyed.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKey"]["name"] == "X-API-Key"
    assert {"APIKey": []} in schema["security"]


def test_no_key_no_check(client):
    assert client.get("/health").status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
                                       ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
                                       ("192.168.1.5", False), ("example.org", False)])
def test_is_loopback(host, loop):
    assert is_loopback(host) is loop


def _serve_cli(monkeypatch, tiny_linker, args, env=None):
    """Run `mmel serve ARGS` with the linker and uvicorn stubbed; the kwargs of create_app."""
    import uvicorn
    from typer.testing import CliRunner

    from cli import app
    from linker.pipeline import Linker

    seen = {}
    monkeypatch.setattr(Linker, "load", classmethod(lambda cls, *a, **k: tiny_linker))
    monkeypatch.setattr(uvicorn, "run", lambda app_, **k: seen.update(app=app_, **k))
    real = server.create_app
    monkeypatch.setattr(server, "create_app", lambda linker, **k: (seen.update(k), real(linker, **k))[1])
    r = CliRunner().invoke(app, ["serve", *args], env=env or {})
    assert r.exit_code == 0, r.output
    return seen


def test_serve_beyond_loopback_without_key_warns(monkeypatch, tiny_linker, caplog):
    with caplog.at_level(logging.WARNING, logger="linker.fronts.server"):
        seen = _serve_cli(monkeypatch, tiny_linker, ["--host", "0.0.0.0", "--port", "9001"])
    warnings = [r.getMessage() for r in caplog.records if r.name == "linker.fronts.server"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "0.0.0.0" in warnings[0] and "without an API key" in warnings[0] and "--api-key" in warnings[0]
    assert seen["host"] == "0.0.0.0" and seen["port"] == 9001 and seen["api_key"] is None


def test_serve_with_key_or_on_loopback_does_not_warn(monkeypatch, tiny_linker, caplog):
    with caplog.at_level(logging.WARNING, logger="linker.fronts.server"):
        seen = _serve_cli(monkeypatch, tiny_linker, ["--host", "0.0.0.0"], env={"MMEL_API_KEY": "k1"})
        assert seen["api_key"] == "k1"
        assert TestClient(seen["app"]).get("/health").status_code == 401
        seen = _serve_cli(monkeypatch, tiny_linker, ["--host", "0.0.0.0", "--api-key", "k2"])
        assert seen["api_key"] == "k2"
        _serve_cli(monkeypatch, tiny_linker, [])
    assert [r for r in caplog.records if r.name == "linker.fronts.server"] == []


def test_serve_warning_reaches_stderr(monkeypatch, tiny_linker, capfd):
    """The warning is a log record; without logging configured it still prints on stderr."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as outside pytest before basicConfig: logging's last resort
    server.serve(tiny_linker, host="0.0.0.0")
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "without an API key" in err
