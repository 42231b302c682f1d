"""The read-only HTTP service: Open Referral UK under ``/oruk/``, OGC API – Features under
``/ogc/`` (pygeoapi), for council directories and GIS teams to read live.

Every answer is built from a `feed.Feed` snapshot by the export functions, so the API shows
what `kindred-map export` would write now. Only GET, HEAD and CORS preflights are answered, to
any origin (``Access-Control-Allow-Origin: *``, as Open Referral UK compliance asks). Errors
are JSON ``{"message": ...}``: 400 for a bad parameter, 404 for an unknown id or path, 405
for any other method, 503 when the store cannot be read, 500 otherwise (details in the
server's log, never in the answer).
"""

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from kindred_map import feed, ogc, orukapi

LOG = logging.getLogger(__name__)
READ_METHODS = ("GET", "HEAD")
ALLOW = b"GET, HEAD, OPTIONS"
OPEN = (b"access-control-allow-origin", b"*")
OGC_FORMATS = ("json",)
"""Formats /ogc/ serves (``f=``). pygeoapi's HTML pages are switched off: they fetch scripts
and styles from CDNs and put the data in a <script> unescaped, where a project named
``</script><script>...`` would run."""


def _message(status: int, text: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"message": text, "status": status}, status, headers)


class _Middleware:
    """ASGI middleware for HTTP requests (`handle`); lifespan events pass through."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class ReadOnly(_Middleware):
    """GET and HEAD pass, with ``Access-Control-Allow-Origin: *``; OPTIONS answers a CORS
    preflight; every other method is refused (405): no write endpoint."""

    async def handle(self, scope, receive, send):
        if scope["method"] == "OPTIONS":
            headers = [
                OPEN,
                (b"access-control-allow-methods", ALLOW),
                (b"access-control-allow-headers", b"*"),
                (b"access-control-max-age", b"86400"),
                (b"allow", ALLOW),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["method"] not in READ_METHODS:
            refused = _message(405, "read-only service: GET only", {"allow": ALLOW.decode()})
            refused.headers["access-control-allow-origin"] = "*"
            await refused(scope, receive, send)
            return

        async def send_open(message):
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != OPEN[0]]
                message = message | {"headers": [*headers, OPEN]}
            await send(message)

        await self.app(scope, receive, send_open)


class JsonOnly(_Middleware):
    """Before pygeoapi: ``f`` must be one of OGC_FORMATS (else 400), and a request without
    ``f`` is asked for JSON whatever its Accept header (a browser's asks for HTML)."""

    async def handle(self, scope, receive, send):
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)
        formats = [value for name, value in pairs if name == "f"]
        if any(value not in OGC_FORMATS for value in formats):
            refused = _message(
                400,
                f"f must be {' or '.join(OGC_FORMATS)}: this service "
                "answers in JSON and GeoJSON only (open it in QGIS or a browser)",
            )
            await refused(scope, receive, send)
            return
        if not formats:
            pairs.append(("f", "json"))
            query = urlencode(pairs).encode("latin-1")
            scope = scope | {"query_string": query}
        await self.app(scope, receive, send)


def _params(request: Request) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        found.setdefault(name, []).append(value)
    return found


def oruk_routes(source: feed.Feed, base_url: str) -> list[Route]:
    """The Open Referral UK endpoints of the profile's openapi.json, over ``source``."""

    options = source.export_options("Open Referral UK")

    def catalogue() -> orukapi.Catalogue:
        return source.snapshot().part(
            "oruk", lambda projects: orukapi.exported_catalogue(projects, options)
        )

    def listing(endpoint: str, answer):
        def handle(request: Request) -> JSONResponse:
            query = orukapi.parse(_params(request), endpoint)
            return JSONResponse(answer(catalogue(), query))

        return handle

    def one(answer):
        def handle(request: Request) -> JSONResponse:
            return JSONResponse(answer(catalogue(), request.path_params["id"]))

        return handle

    def root(request: Request) -> JSONResponse:
        return JSONResponse(orukapi.root(catalogue(), base_url))

    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(orukapi.openapi(base_url, source.settings["pack_licence"]))

    return [
        Route("/", root),
        Route("/openapi.json", openapi),
        Route("/services", listing("services", orukapi.services_page)),
        Route("/services/{id:path}", one(orukapi.full_service)),
        Route(
            "/service_at_locations",
            listing("service_at_locations", orukapi.service_at_locations_page),
        ),
        Route("/service_at_locations/{id:path}", one(orukapi.full_service_at_location)),
        Route("/taxonomies", listing("taxonomies", orukapi.taxonomies_page)),
        Route("/taxonomies/{id:path}", one(orukapi.taxonomy)),
        Route("/taxonomy_terms", listing("taxonomy_terms", orukapi.taxonomy_terms_page)),
        Route("/taxonomy_terms/{id:path}", one(orukapi.taxonomy_term)),
    ]


async def _bad_request(request: Request, error: Exception) -> JSONResponse:
    return _message(400, str(error))


async def _not_found(request: Request, error: Exception) -> JSONResponse:
    return _message(404, str(error.args[0]) if error.args else "not found")


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    return _message(error.status_code, str(error.detail), error.headers)


async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    LOG.error("%s %s: %s (%r)", request.method, request.url.path, error, error.__cause__)
    return _message(503, f"{error}: try again later", {"retry-after": "30"})


async def _server_error(request: Request, error: Exception) -> JSONResponse:
    LOG.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return _message(500, "internal error: the server's log has the details")


def create_app(source: feed.Feed, base_url: str, host: str, port: int, folder: Path):
    """The service's ASGI app: ``/`` (what is here), ``/healthz`` (the store can be read),
    ``/oruk/`` and ``/ogc/``. ``base_url`` is the address clients use (links are made from it);
    ``folder`` holds pygeoapi's generated configuration and OpenAPI document for as long as the
    app runs."""
    base_url = base_url.rstrip("/")
    handlers = {
        orukapi.BadRequest: _bad_request,
        orukapi.NotFound: _not_found,
        HTTPException: _http_error,
        feed.Unavailable: _unavailable,
        Exception: _server_error,
    }
    features = JsonOnly(ogc.app(source, base_url, host, port, folder, handlers))

    def index(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "title": "Kindred Map: community social action in the Liverpool City Region",
                "oruk": f"{base_url}/oruk/",
                "ogc": f"{base_url}/ogc/",
                "about": "Open Referral UK (UK profile of HSDS 3.0) for directories; OGC API - "
                "Features for GIS (QGIS: Layer > Add Layer > Add WFS / OGC API - Features "
                "Layer). Read-only, no key.",
            }
        )

    def health(request: Request) -> JSONResponse:
        """For Caddy and monitoring: 200 when the store can be read now (one version check, a
        read only when it changed), else the 503 every answer would give."""
        source.snapshot()
        return JSONResponse({"status": "ok", "store": "readable"})

    oruk = oruk_routes(source, base_url)
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", health),
            # /oruk answers as /oruk/ does: a redirect would lose a proxy's path prefix.
            Route("/oruk", oruk[0].endpoint),
            Mount("/oruk", routes=oruk),
            Mount("/ogc", app=features),
        ],
        exception_handlers=handlers,
    )
    return ReadOnly(app)


def serve(
    setting,
    host: str = "127.0.0.1",
    port: int = 8600,
    url: str | None = None,
    include_synthetic: bool = False,
    settings: Mapping[str, str] | None = None,
    access_log: bool = False,
) -> None:
    """Run the service with uvicorn until stopped (``kindred-map api``). The store is read
    first: one that cannot be read is a ValueError here, not an error for the first client."""
    source = feed.Feed(setting, include_synthetic, settings)
    try:
        source.snapshot()
    except feed.Unavailable as error:
        raise ValueError(f"{error}: {error.__cause__}") from error
    with tempfile.TemporaryDirectory(prefix="kindred-map-api-") as folder:
        app = create_app(source, url or f"http://{host}:{port}", host, port, Path(folder))
        uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")
