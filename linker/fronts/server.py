"""The HTTP API: a FastAPI app around one shared, read-only `Linker`.

Endpoints:

- ``POST /link`` — a document JSON (as for `mmel link`) → its output record; ``?html=true``
  returns the HTML view (`linker.fronts.html`) instead.
- ``GET /entities/{id}`` — one KB entity, or 404.
- ``GET /health`` — status, KB counts and the models in use.
- ``GET /docs`` — the API's docs, offline: Swagger UI from the assets of the installed package
  ``fastapi-offline`` (the ``serve`` extra), else a self-contained page of the OpenAPI schema
  (``GET /openapi.json``); no CDN either way.

With an API key (``create_app(..., api_key=KEY)``, ``mmel serve --api-key`` or ``MMEL_API_KEY``)
every request except the docs and the schema must carry it, as ``X-API-Key: KEY`` or
``Authorization: Bearer KEY``; else 401. The docs page and the schema hold nothing of the KB and
stay public so that a browser can open them (Swagger UI's "Authorize" sends the key).

Untrusted input is bounded: the body size (413), the pixels of each image (413, read from the
header before decoding), the number of given or detected mentions (422), the requests processed
at once (503 + Retry-After) and the pixels decoded at once (`indexer.images.DECODE_BUDGET`:
further images wait). Images are sent inline as base64 ``{"id", "data"}``; local ``path``
images are refused (403) unless the app was created with ``allow_local_images=True``, since a
path lets a client make the server read its files. Errors are ``{"error": "<one line>"}`` with a
4xx status; nothing a client sends should cause a 5xx.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import html as html_lib
import io
import ipaddress
import json
import logging
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb.errors import InputError, LinkerError
from kb.types import Document
from linker.document import document_record, parse_document
from linker.fronts.html import render_html
from linker.pipeline import set_threads

log = logging.getLogger(__name__)
# images are checked against our own pixel limit right after Image.open; Pillow's warning repeats it
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

MAX_BODY_BYTES = 2_000_000
MAX_IMAGE_PIXELS = 50e6
MAX_MENTIONS = 1_000
MAX_IN_FLIGHT = 16  # POST /link requests processed at once; more get 503 + Retry-After
_IMAGE_TYPES = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}
DOCS_ASSETS_URL = "/docs-assets"
PUBLIC_PATHS = ("/docs", "/openapi.json")  # and DOCS_ASSETS_URL/…: readable without the API key
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class Span(BaseModel):
    """A mention to link: half-open character offsets into the document's text."""

    start: int = Field(ge=0, description="Offset of the mention's first character.")
    end: int = Field(gt=0, description="Offset one past its last character (start < end <= len(text)).")


class InlineImage(BaseModel):
    """An image of the document, sent inline."""

    id: str | None = Field(None, description="The image's id in the output's faces [default: its position].")
    data: str | None = Field(None, description="The image file as base64, or a data: URL (" + ", ".join(_IMAGE_TYPES) + ").")
    path: str | None = Field(None, description="A file on the server instead of data; refused (403) unless the server "
                                               "was started with --allow-local-images.")


class LinkDocument(BaseModel):
    """A document to link: the input of `mmel link`, with its images inline.

    Documents the request body of ``POST /link``; the body itself is validated by
    `linker.document.parse_document` (the same checks as the CLI).
    """

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "d1", "text": "Obama went to Paris.", "mentions": [{"start": 0, "end": 5}, {"start": 14, "end": 19}]},
        {"id": "d2", "text": "Angela Merkel met Joe Biden in Berlin."},
    ]})

    id: str | int | None = Field(None, description="Echoed in the output.")
    text: str = Field(description="The document's text.")
    mentions: list[Span] | None = Field(None, description="The spans to link (no overlaps, no blank spans); "
                                                          "omitted: mentions are detected.")
    images: list[InlineImage] | None = Field(None, description="Images whose faces are linked.")


def docs_assets() -> Path | None:
    """The folder of Swagger UI's assets in the installed package `fastapi-offline`, or None."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    needed = ("swagger-ui-bundle.js", "swagger-ui.css")
    return folder if all((folder / name).is_file() for name in needed) else None


def schema_page(schema: dict) -> str:
    """A self-contained HTML page of an OpenAPI `schema`: each operation, then the whole schema."""
    esc = html_lib.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(schema['info']['title'])} API</title>",
             "<style>body{font:15px/1.4 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "pre{background:#f4f4f4;padding:.6em;overflow:auto}code{font-weight:bold}</style></head><body>",
             f"<h1>{esc(schema['info']['title'])} API</h1>",
             f"<p>{esc(schema['info'].get('summary', ''))} The schema: <a href='openapi.json'>openapi.json</a>.</p>"]
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            parts.append(f"<h2><code>{esc(method.upper())} {esc(path)}</code></h2>")
            parts.append(f"<p>{esc(op.get('description') or op.get('summary') or '')}</p>")
            for param in op.get("parameters", []):
                parts.append(f"<p>parameter <code>{esc(param['name'])}</code> ({esc(param.get('in', ''))})</p>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                parts.append(f"<p>request body:</p><pre>{esc(json.dumps(body, indent=2))}</pre>")
    parts.append(f"<h2>Schemas</h2><pre>{esc(json.dumps(schema.get('components', {}), indent=2))}</pre></body></html>")
    return "".join(parts)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or name to listen on) is reachable only from this machine."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def key_matches(headers, api_key: str) -> bool:
    """Whether request `headers` carry `api_key` as X-API-Key or `Authorization: Bearer` (constant time)."""
    given = headers.get("x-api-key")
    if given is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else None
    return given is not None and hmac.compare_digest(given.encode("utf-8"), api_key.encode("utf-8"))


class HTTPProblem(Exception):
    """A client error to answer with `status`, a one-line `message` and optional `headers`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than `limit` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPProblem(400, f"invalid Content-Length {declared[:40]!r}") from None
        if size > limit:
            raise HTTPProblem(413, f"request body of {size} bytes is larger than the limit of {limit} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise HTTPProblem(413, f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes):
    """Decode a UTF-8 JSON body; 400 with the reason otherwise."""
    if not body.strip():
        raise HTTPProblem(400, "empty request body: send a document JSON object")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HTTPProblem(400, f"request body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise HTTPProblem(400, f"request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise HTTPProblem(400, f"request body is not acceptable JSON ({str(exc)[:100]})") from None


def _check_unicode(obj, where: str = "document") -> None:
    """Refuse strings with unpaired surrogates (valid JSON escapes, but not encodable text)."""
    stack = [(obj, where)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise HTTPProblem(422, f"{at}: string has an unpaired surrogate at position {exc.start}") from None
        elif isinstance(value, dict):
            stack.extend((v, f"{at}[{str(k)[:40]!r}]") for k, v in value.items())
            stack.extend((k, f"{at} key {i}") for i, k in enumerate(value))
        elif isinstance(value, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(value))


def save_images(obj: dict, folder: Path, allow_local: bool, max_pixels: float) -> dict:
    """Replace inline base64 images `{"id", "data"}` by files in `folder` (validated with Pillow).

    Returns a copy of `obj` whose images all have a `path`. Local `path` images are refused
    unless `allow_local`.
    """
    from PIL import Image, UnidentifiedImageError

    images = obj.get("images")
    if not images:
        return obj
    if not isinstance(images, list):
        raise HTTPProblem(422, "document: 'images' must be a list of {id, data}")
    out = []
    for i, im in enumerate(images):
        if not isinstance(im, dict):
            raise HTTPProblem(422, f"document: images[{i}] must be an object with 'id' and base64 'data'")
        image_id = str(im.get("id", i))
        data = im.get("data")
        if data is None:
            if "path" in im and not allow_local:
                raise HTTPProblem(
                    403, f"document: images[{i}] names a local path; this server refuses local images "
                    "(send base64 'data', or start it with --allow-local-images)"
                )
            out.append(im)
            continue
        if not isinstance(data, str):
            raise HTTPProblem(422, f"document: images[{i}].data must be a base64 string, got {type(data).__name__}")
        if data.startswith("data:"):
            data = data.partition(",")[2]
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPProblem(422, f"document: images[{i}].data is not valid base64") from None
        try:
            with Image.open(io.BytesIO(raw)) as img:
                width, height = img.size
                fmt = img.format
                if width * height > max_pixels:
                    raise HTTPProblem(
                        413, f"document: images[{i}] has {width}x{height} pixels, more than the limit of {int(max_pixels)}"
                    )
                img.verify()
        except HTTPProblem:
            raise
        except UnidentifiedImageError:  # its message names the BytesIO object
            raise HTTPProblem(
                422, f"document: images[{i}].data is not an image of a known format ({', '.join(_IMAGE_TYPES)})"
            ) from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise HTTPProblem(422, f"document: images[{i}].data is not a readable image ({str(exc)[:80]})") from None
        if fmt not in _IMAGE_TYPES:
            raise HTTPProblem(422, f"document: images[{i}] is {fmt}; accepted: {', '.join(_IMAGE_TYPES)}")
        path = folder / f"{i}{_IMAGE_TYPES[fmt]}"
        path.write_bytes(raw)
        out.append({"id": image_id, "path": str(path)})
    return {**obj, "images": out}


def link_one(linker, obj, *, allow_local_images: bool, max_image_pixels: float,
             max_mentions: int, html: bool) -> dict | str:
    """Validate and link one document JSON value; the record, or the HTML view if `html`."""
    if not isinstance(obj, dict):
        raise HTTPProblem(422, f"document: expected a JSON object, got {type(obj).__name__}")
    _check_unicode(obj)
    mentions = obj.get("mentions")
    if isinstance(mentions, list) and len(mentions) > max_mentions:
        raise HTTPProblem(422, f"document: {len(mentions)} mentions given, the limit is {max_mentions}")
    with tempfile.TemporaryDirectory(prefix="mmel-serve-") as tmp:
        obj = save_images(obj, Path(tmp), allow_local_images, max_image_pixels)
        try:
            doc: Document = parse_document(obj, "document")
        except InputError as exc:
            raise HTTPProblem(422, str(exc)) from None
        if doc.mentions is None:  # detect here, to bound the work a long text can cause
            doc = replace(doc, mentions=linker.mentions_of(doc))
            if len(doc.mentions) > max_mentions:
                raise HTTPProblem(
                    422, f"document: {len(doc.mentions)} mentions detected, the limit is {max_mentions}; "
                    "send shorter texts or the spans to link"
                )
        linked = next(iter(linker.process([doc], batch_size=1)))  # faces read the image files
        record = document_record(doc, list(linked.links), list(linked.warnings))
        return render_html(doc, record) if html else record


def health(linker) -> dict:
    """Status, KB counts and model ids of a `Linker`."""
    meta = linker.kb.meta
    manifest = getattr(linker.index, "manifest", {}) or {}
    cfg = linker.reranker.config
    return {
        "status": "ok",
        "kb": {
            "path": str(linker.kb.path),
            "entities": len(linker.kb),
            **{k: meta[k] for k in ("mentions", "priors", "redirects", "checksum", "built_at") if k in meta},
        },
        "models": {
            "text_encoder": getattr(linker.encoder, "model_id", type(linker.encoder).__name__),
            "text_index": {k: manifest.get(k) for k in ("kind", "count", "dim", "model_id")},
            "reranker": {"features": cfg.n_features, "dim": cfg.dim, "text_model": cfg.text_model or None},
            "faces": getattr(linker, "visual", None) is not None,
        },
        "config": linker.config.to_dict(),
    }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": message}` on one line."""
    return JSONResponse({"error": message.replace("\r", "\\r").replace("\n", "\\n")}, status_code=status,
                        headers=headers)


def create_app(linker, max_body_bytes: int = MAX_BODY_BYTES, max_image_pixels: float = MAX_IMAGE_PIXELS,
               allow_local_images: bool = False, max_mentions: int = MAX_MENTIONS,
               max_in_flight: int = MAX_IN_FLIGHT, api_key: str | None = None) -> FastAPI:
    """The app serving `linker` (loaded once, shared by all requests; it is read-only).

    At most `max_in_flight` POST /link requests are processed at once; more get 503 with
    `Retry-After`. Decoded images are further bounded by `indexer.images.DECODE_BUDGET`. With
    `api_key`, every request but the docs and the schema must carry it (else 401).
    """
    app = FastAPI(
        title="mmel", summary="Multimodal entity linking: text mentions and faces to a KB.",
        docs_url=None, redoc_url=None,  # /docs below: served from local assets, never a CDN
    )
    app.state.linker = linker
    app.state.in_flight = 0
    api_key = api_key or None

    if api_key:
        @app.middleware("http")
        async def _require_key(request: Request, call_next):
            path = request.url.path
            if path in PUBLIC_PATHS or path.startswith(DOCS_ASSETS_URL + "/") or key_matches(request.headers, api_key):
                return await call_next(request)
            return _error(401, "missing or wrong API key: send it as the header 'X-API-Key: <key>' "
                          "or 'Authorization: Bearer <key>'", {"WWW-Authenticate": "Bearer"})

    def _openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            body = LinkDocument.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update({**body.pop("$defs", {}), "LinkDocument": body})
            schema["paths"]["/link"]["post"]["requestBody"] = {
                "required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LinkDocument"}}},
            }
            if api_key:
                components["securitySchemes"] = {
                    "APIKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                    "Bearer": {"type": "http", "scheme": "bearer"},
                }
                schema["security"] = [{"APIKey": []}, {"Bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = _openapi
    assets = docs_assets()
    if assets is not None:
        app.mount(DOCS_ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def _docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        if assets is None:
            return HTMLResponse(schema_page(app.openapi()))
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title="mmel API",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # else Swagger UI asks validator.swagger.io
        )

    @app.exception_handler(HTTPProblem)
    async def _problem(request: Request, exc: HTTPProblem) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)  # unknown route, wrong method
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.url.path[:200]!r}: use POST /link, GET /entities/{{id}}, GET /health or /docs"
        return _error(exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)  # a bad query parameter, e.g. ?html=maybe
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(LinkerError)
    async def _linker_error(request: Request, exc: LinkerError) -> JSONResponse:
        # bad input is caught as HTTPProblem before linking; anything else is the server's fault
        return _error(422 if isinstance(exc, InputError) else 500, str(exc))

    @app.post("/link", response_model=None)
    async def link(request: Request, html: bool = False) -> JSONResponse | HTMLResponse:
        """Link one document `{"id", "text", "mentions"?, "images": [{"id", "data"}]?}` (schema:
        LinkDocument; the body is read raw, within the size limit, then validated as for `mmel link`)."""
        if app.state.in_flight >= max_in_flight:  # the event loop is one thread: no lock needed
            raise HTTPProblem(503, f"server busy: {max_in_flight} requests in flight; retry shortly",
                              {"Retry-After": "1"})
        app.state.in_flight += 1
        try:
            body = await read_body(request, max_body_bytes)
            obj = parse_json(body)
            del body
            out = await run_in_threadpool(
                link_one, linker, obj, allow_local_images=allow_local_images,
                max_image_pixels=max_image_pixels, max_mentions=max_mentions, html=html,
            )
        finally:
            app.state.in_flight -= 1
        return HTMLResponse(out) if html else JSONResponse(out)

    @app.get("/entities/{entity_id:path}")
    def entity(entity_id: str) -> JSONResponse:
        """One KB entity by id (QID or title)."""
        try:
            ent = linker.kb.get(entity_id)
        except (UnicodeEncodeError, ValueError):  # unpaired surrogates, NUL bytes
            ent = None
        if ent is None:
            raise HTTPProblem(404, f"no entity {entity_id[:200]!r} in this KB")
        return JSONResponse({"id": ent.id, "name": ent.name, "description": ent.description})

    @app.get("/health")
    def _health() -> dict:
        """Status, KB counts and models."""
        return health(linker)

    return app


def serve(linker, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, **kwargs) -> None:
    """Run the app with uvicorn until interrupted, with the linker config's threads per request.

    Listening beyond loopback without `api_key` logs a one-line warning.
    """
    import uvicorn

    if not api_key and not is_loopback(host):
        log.warning("serving on %s without an API key: anyone who can reach port %d can use this server; "
                    "set --api-key or MMEL_API_KEY", host, port)
    set_threads(linker.config.threads)
    uvicorn.run(create_app(linker, api_key=api_key, **kwargs), host=host, port=port, log_level="info")
