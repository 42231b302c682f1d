"""OGC API – Features through pygeoapi: its configuration and OpenAPI document made from the
project at start-up, and the provider plugin that hands it the public layers.

pygeoapi does the standard (landing page, conformance, collections, queryables, items with
``bbox``, ``limit``/``offset`` paging and ``property=value`` filters, GeoJSON, its OpenAPI
document); `PublicLayerProvider` (named in the configuration as pygeoapi's plugins are)
answers its queries from the same GeoJSON the export writes (`export.export_bytes`), built once
per store version by a `feed.Feed`. pygeoapi is never given a database connection or a file of
the store, so it cannot read the private ``projects`` table, whichever backend holds it.
"""

import importlib
import json
import logging
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
import yaml
from pygeoapi.openapi import get_oas
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeoapi.util import crs_transform

from kindred_map import boundaries, export, feed

COLLECTIONS = {
    "projects": ("projects", "id", "name"),
    "ward_summary": ("ward", "WD24CD", "WD24NM"),
    "deanery_summary": ("deanery", "deanery_id", "deanery_name"),
    "borough_summary": ("borough", "LAD25CD", "LAD25NM"),
}
"""Collection id -> (what `export.export_bytes` exports, id field, title field). The ids are
the layer names of the council pack's GeoPackage and of the PostGIS partner views."""
DEFAULT_ITEMS = 100
MAX_ITEMS = 10_000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
FEEDS: dict[str, feed.Feed] = {}
"""The feeds providers read, by the key their configuration names (set by `app`)."""


@dataclass(frozen=True)
class Layer:
    """One collection at one store version: the export's features, indexed."""

    features: tuple[dict, ...]
    fields: dict[str, dict]
    tree: shapely.STRtree
    ids: dict[str, int]


def _kind(values: list) -> str:
    """The JSON Schema type of a property from its values (text when all are null)."""
    given = [value for value in values if value is not None]
    if given and all(isinstance(value, bool) for value in given):
        return "boolean"
    if given and all(isinstance(value, int) and not isinstance(value, bool) for value in given):
        return "integer"
    if given and all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in given
    ):
        return "number"
    return "string"


def layer(collection: dict) -> Layer:
    """Index an exported FeatureCollection: property types (with the export's column
    definitions as descriptions), a spatial index and the features by id."""
    features = tuple(collection["features"])
    names = list(features[0]["properties"]) if features else []
    definitions = collection.get("columns", {})
    fields = {}
    for name in names:
        fields[name] = {"type": _kind([f["properties"].get(name) for f in features])}
        if definitions.get(name):
            fields[name]["description"] = str(definitions[name])
    shapes = [shapely.geometry.shape(f["geometry"]) if f["geometry"] else None for f in features]
    return Layer(
        features=features,
        fields=fields,
        tree=shapely.STRtree(shapes),
        ids={str(f["id"]): n for n, f in enumerate(features)},
    )


def exported_layer(projects, what: str, options: Mapping) -> Layer:
    """The export's GeoJSON of ``what`` (projects or an area level), indexed (``options``:
    `feed.Feed.export_options`)."""
    return layer(json.loads(export.export_bytes(projects, "geojson", what, **options)))


def _matches(value, wanted: str, kind: str, name: str) -> bool:
    """A property filter: the text of the query compared as the property's type."""
    if value is None:
        return False
    try:
        if kind == "boolean":
            if wanted.lower() not in ("true", "false"):
                raise ValueError
            return value == (wanted.lower() == "true")
        if kind == "integer":
            return value == int(wanted)
        if kind == "number":
            return value == float(wanted)
    except ValueError:
        message = f"{name} is {'a' if kind != 'integer' else 'an'} {kind}: {wanted!r} is not one"
        raise ProviderInvalidQueryError(user_msg=message) from None
    return str(value) == wanted


class PublicLayerProvider(BaseProvider):
    """pygeoapi feature provider over one public layer of a `feed.Feed` (read-only).

    Configuration: ``data`` is the export's ``what`` (projects, ward, deanery, borough);
    ``options.feed`` the key of the feed in `FEEDS`. Each request (pygeoapi makes a provider
    per request) takes the feed's current snapshot once."""

    def __init__(self, provider_def):
        super().__init__(provider_def)
        source = FEEDS[self.options["feed"]]
        options = source.export_options("OGC API - Features")
        self._layer = source.snapshot().part(
            ("ogc", self.data), lambda projects: exported_layer(projects, self.data, options)
        )
        self._fields = self.get_fields()

    def get_fields(self):
        # pygeoapi edits the dictionaries it is given: hand it copies.
        return {name: dict(spec) for name, spec in self._layer.fields.items()}

    def _feature(self, position: int, select_properties, skip_geometry: bool) -> dict:
        found = self._layer.features[position]
        properties = found["properties"]
        if select_properties:
            properties = {k: v for k, v in properties.items() if k in select_properties}
        return {
            "type": "Feature",
            "id": found["id"],
            "geometry": None if skip_geometry else found["geometry"],
            "properties": dict(properties),
        }

    @crs_transform
    def query(
        self,
        offset=0,
        limit=10,
        resulttype="results",
        bbox=None,
        datetime_=None,
        properties=None,
        sortby=None,
        select_properties=None,
        skip_geometry=False,
        q=None,
        filterq=None,
        **kwargs,
    ):
        if filterq is not None:
            raise ProviderInvalidQueryError(
                user_msg="CQL filters are not supported here: filter with property=value"
            )
        if datetime_:
            raise ProviderInvalidQueryError(user_msg="these collections have no time field")
        features = self._layer.features
        chosen = np.arange(len(features))
        if bbox:
            corners = list(bbox)
            box = shapely.box(*(corners[:2] + corners[3:5] if len(corners) == 6 else corners))
            chosen = np.sort(self._layer.tree.query(box, predicate="intersects"))
        for name, wanted in properties or []:
            kind = self._layer.fields[name]["type"]
            chosen = [
                n
                for n in chosen
                if _matches(features[n]["properties"].get(name), wanted, kind, name)
            ]
        if q:
            words = str(q).casefold().split()
            chosen = [
                n
                for n in chosen
                if all(
                    any(word in str(v).casefold() for v in features[n]["properties"].values())
                    for word in words
                )
            ]
        for order in reversed(sortby or []):
            name = order["property"]
            given = [n for n in chosen if features[n]["properties"].get(name) is not None]
            empty = [n for n in chosen if features[n]["properties"].get(name) is None]
            given.sort(key=lambda n: features[n]["properties"][name], reverse=order["order"] == "-")
            chosen = given + empty
        chosen = list(chosen)
        page = [] if resulttype == "hits" else chosen[offset : offset + limit]
        return {
            "type": "FeatureCollection",
            "features": [self._feature(n, select_properties, skip_geometry) for n in page],
            "numberMatched": len(chosen),
            "numberReturned": len(page),
        }

    @crs_transform
    def get(self, identifier, **kwargs):
        position = self._layer.ids.get(str(identifier))
        if position is None:
            raise ProviderItemNotFoundError(user_msg=f"no item {identifier!r} in {self.data}")
        return self._feature(position, None, False)


def _description(what: str) -> str:
    if what == "projects":
        return (
            "Community social action projects of the Liverpool City Region, as every Kindred Map "
            "export gives them: illustrative (synthetic) records left out unless the service was "
            "started with --include-synthetic; home-run projects at their ward's centre with no "
            "address or full postcode. Areas joined with "
            + "; ".join(
                f"{name} ({boundaries.metadata(name)['vintage']})" for name in export.PROJECT_LAYERS
            )
            + "."
        )
    meta = boundaries.metadata(what)
    return (
        f"{meta['title']}: the council pack's {what} summary figures: Census 2021 residents, "
        "projects in total and by type, and per 10,000 residents. Boundaries: "
        f"{meta['source']}, {meta['vintage']}. Accuracy: {meta['accuracy']} "
        f"Licence: {meta['licence']}."
    )


def config(base_url: str, host: str, port: int, key: str, settings) -> dict:
    """pygeoapi's configuration: server, metadata and the four collections."""
    minx, miny, maxx, maxy = (float(v) for v in boundaries.load("borough").total_bounds)
    resources = {}
    for name, (what, id_field, title_field) in COLLECTIONS.items():
        title = "Public projects" if what == "projects" else f"{what.capitalize()} summary"
        resources[name] = {
            "type": "collection",
            "title": title,
            "description": _description(what),
            "keywords": ["community", "social action", "Liverpool City Region", what],
            "links": [],
            "extents": {"spatial": {"bbox": [minx, miny, maxx, maxy], "crs": CRS84}},
            "providers": [
                {
                    "type": "feature",
                    "name": f"{__name__}.{PublicLayerProvider.__name__}",
                    "data": what,
                    "id_field": id_field,
                    "title_field": title_field,
                    "options": {"feed": key},
                }
            ],
        }
    return {
        "server": {
            "bind": {"host": host, "port": port},
            "url": f"{base_url}/ogc",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "cors": False,
            "pretty_print": False,
            "limits": {
                "default_items": DEFAULT_ITEMS,
                "max_items": MAX_ITEMS,
                "on_exceed": "throttle",
            },
            "map": {"url": "", "attribution": ""},
            "admin": False,
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "Kindred Map: community social action in the Liverpool City Region",
                "description": "Public projects and ward, deanery and borough summaries, "
                "read-only. Attribution and licences: see each collection and the ORUK feed's "
                "about (/oruk/).",
                "keywords": ["community", "social action", "Liverpool City Region"],
                "url": base_url,
                "terms_of_service": settings["pack_licence"],
            },
            # The licences are in words, several of them: the URL is where they are listed.
            "license": {"name": settings["pack_licence"], "url": f"{base_url}/oruk/"},
            "provider": {"name": settings["owner"]},
            "contact": {"name": settings["contact"]},
        },
        "resources": resources,
    }


class _OneLine(logging.Filter):
    """pygeoapi logs each refused request (a bad bbox, an unknown id) at ERROR with a
    traceback: keep its one line, drop the traceback (failures reach the app's own log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("pygeoapi"):
            record.exc_info, record.exc_text = None, None
        return True


def app(
    source: feed.Feed,
    base_url: str,
    host: str,
    port: int,
    folder: Path,
    exception_handlers: Mapping | None = None,
):
    """pygeoapi's Starlette app for ``source``: writes its configuration and OpenAPI document
    to ``folder`` and imports `pygeoapi.starlette_app`, which reads them once; so one per
    process. ``exception_handlers`` answer what escapes pygeoapi (its own answer would be
    plain text)."""
    if "pygeoapi.starlette_app" in sys.modules:
        raise RuntimeError("pygeoapi's app is already configured in this process")
    key = secrets.token_hex(8)
    FEEDS[key] = source
    settings = config(base_url, host, port, key, source.settings)
    config_path = Path(folder) / "pygeoapi-config.yml"
    config_path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    openapi_path = Path(folder) / "pygeoapi-openapi.json"
    openapi_path.write_text(json.dumps(get_oas(settings)), encoding="utf-8")
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)
    features = importlib.import_module("pygeoapi.starlette_app").APP
    for kind, handler in (exception_handlers or {}).items():
        features.add_exception_handler(kind, handler)
    for handler in logging.getLogger().handlers:  # set up by pygeoapi from its configuration
        handler.addFilter(_OneLine())
    return features
