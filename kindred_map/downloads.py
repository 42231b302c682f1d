"""The dashboard's download files: the shown projects as CSV or GeoJSON, the call sheet.

Apart from `kindred_map.tables` and `kindred_map.freshness`, so that what reads those (the
area panel of `kindred-map area`) does not import the `export` package's writers."""

from datetime import date

import geopandas as gpd
import pandas as pd

from kindred_map import export, freshness
from kindred_map.view import View, filter_words


def download_bytes(shown: gpd.GeoDataFrame, fmt: str, view: View) -> bytes:
    """The shown projects as a CSV or GeoJSON file (via `kindred_map.export`: home-run ones at
    their ward's centre, the filters written into the GeoJSON's metadata)."""
    if fmt not in ("csv", "geojson"):
        raise ValueError(f"downloads are csv or geojson, not {fmt!r}")
    return export.export_bytes(shown, fmt, parameters=filter_words(view))


def call_sheet_csv(projects: pd.DataFrame, today: date | None = None) -> bytes:
    """The call sheet as CSV bytes (UTF-8 with BOM, for Excel)."""
    return export.csv_bytes(freshness.call_sheet(projects, today))
