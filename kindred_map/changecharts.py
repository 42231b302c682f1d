"""Charts of change between two dates (Altair, which Streamlit ships): the map and one area's line.

The choropleth colours each area by one change measure on a diverging blue-orange scale (safe
for the common colour-vision deficiencies) centred on no change: white is no change, blue is
better (more residents within reach, a smaller gap), orange is worse, whatever the sign of the
measure. The scale is symmetric about zero, so equal changes either way get equal strength.
Vega draws it in the browser from inline data: no tiles, no network.
"""

import json

import altair as alt
import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry.polygon import orient

from kindred_map import coverage

MEASURES = {
    "reached_change": ("Change in residents within reach", True),
    "pct_covered_change": ("Change in % of residents within reach (points)", True),
    "newly_reached_deciles_1_2": ("Residents in IMD deciles 1-2 newly within reach", True),
    "newly_beyond_reach_deciles_1_2": ("Residents in IMD deciles 1-2 newly beyond reach", False),
    "gap_score_change": ("Change in gap score (need-weighted people beyond reach)", False),
    "gap_rank_change": ("Gap rank change (positive: moved up the list of gaps)", False),
}
"""Measure -> (label, True when a higher value is better)."""

TABLE_COLUMNS = {
    "gap_score_change": ("Gap score change", "%+,d"),
    "gap_rank_from": ("Gap rank then", "%d"),
    "gap_rank_to": ("Gap rank now", "%d"),
    "pct_covered_from": ("% within reach then", "%.1f%%"),
    "pct_covered_to": ("% within reach now", "%.1f%%"),
    "reached_change": ("Residents within reach: change", "%+,d"),
    "newly_reached": ("Newly within reach", "%,d"),
    "newly_beyond_reach": ("Newly beyond reach", "%,d"),
    "newly_reached_deciles_1_2": ("Deciles 1-2 newly within reach", "%,d"),
    "newly_beyond_reach_deciles_1_2": ("Deciles 1-2 newly beyond reach", "%,d"),
    "opened": ("Projects opened", "%,d"),
    "closed": ("Projects closed", "%,d"),
    "projects_from": ("Projects then", "%,d"),
    "projects_to": ("Projects now", "%,d"),
}
"""The ranked table's columns after the area's name: (heading, how the page shows the number:
printf-style with ``,`` for thousands, as Streamlit's NumberColumn takes it)."""


def _clockwise(geometry):
    """Exterior rings clockwise, as d3-geo (Vega's projection) reads polygons: RFC 7946's
    counter-clockwise rings would fill the whole globe."""
    if geometry is None or geometry.is_empty:
        return geometry
    parts = getattr(geometry, "geoms", [geometry])
    return shapely.MultiPolygon([orient(part, sign=-1.0) for part in parts])


def choropleth(layer: gpd.GeoDataFrame, level: str, measure: str, height: int = 520):
    """The areas of a `change.change_between` layer coloured by ``measure`` (one of MEASURES)."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    label, higher_is_better = MEASURES[measure]
    code, name = coverage.LEVELS[level]
    values = pd.to_numeric(layer[measure], errors="coerce").fillna(0)
    largest = float(values.abs().max()) or 1.0
    shapes = gpd.GeoDataFrame(
        {
            "area": layer[name].astype(str),
            "code": layer[code].astype(str),
            "value": values,
            "covered_then": layer["pct_covered_from"],
            "covered_now": layer["pct_covered_to"],
        },
        geometry=[_clockwise(g) for g in layer.geometry.simplify(0.0005)],
        crs=layer.crs,
    )
    # Inline GeoJSON: Streamlit would turn a data frame into Arrow and lose the geometries.
    data = alt.InlineData(
        values=json.loads(shapes.to_json(na="null")), format=alt.DataFormat(property="features")
    )
    scale = alt.Scale(
        scheme="blueorange", domain=[-largest, largest], domainMid=0, reverse=higher_is_better
    )
    return (
        alt.Chart(data, height=height, width=height * 1.3)
        .mark_geoshape(stroke="#555555", strokeWidth=0.4)
        .encode(
            color=alt.Color(
                "properties.value:Q",
                scale=scale,
                legend=alt.Legend(title=label, orient="top", titleLimit=600, gradientLength=260),
            ),
            tooltip=[
                alt.Tooltip("properties.area:N", title=level.capitalize()),
                alt.Tooltip("properties.code:N", title="Code"),
                alt.Tooltip("properties.value:Q", title=label, format=",.2~f"),
                alt.Tooltip("properties.covered_then:Q", title="% within reach then", format=".1f"),
                alt.Tooltip("properties.covered_now:Q", title="% within reach now", format=".1f"),
            ],
        )
        .project(type="mercator")
    )


def ranked_table(ranked: pd.DataFrame, level: str) -> pd.DataFrame:
    """A ranking of `change.ranked` as shown: readable headings, numbers kept numbers (so they
    sort), ranks from 1; `table_formats` says how to show them."""
    name = coverage.LEVELS[level][1]
    table = pd.DataFrame(ranked.drop(columns="geometry", errors="ignore"))
    shown = table[[name, *TABLE_COLUMNS]].rename(columns={name: level.capitalize()})
    shown = shown.rename(columns={key: heading for key, (heading, _) in TABLE_COLUMNS.items()})
    shown.index = pd.RangeIndex(1, len(shown) + 1, name="Rank")
    return shown


def table_formats() -> dict[str, str]:
    """The ranked table's heading -> number format (thousands separators, signs, units)."""
    return dict(TABLE_COLUMNS.values())


def timeline_chart(series: pd.DataFrame, area: str, height: int = 180):
    """One area's open projects and residents within reach over time (`change.timeline`)."""
    data = series.assign(date=pd.to_datetime(series["date"]))
    base = alt.Chart(data, height=height, width=260).encode(
        x=alt.X("date:T", title=None, axis=alt.Axis(format="%b %Y"))
    )
    projects = base.mark_line(point=True, interpolate="step-after").encode(
        y=alt.Y("projects:Q", title="Open projects", axis=alt.Axis(tickMinStep=1)),
        tooltip=["date:T", "projects:Q"],
    )
    reached = base.mark_line(point=True, interpolate="step-after", color="#0072B2").encode(
        y=alt.Y("reached:Q", title="Residents within reach"),
        tooltip=["date:T", alt.Tooltip("reached:Q", format=","), "pct_covered:Q"],
    )
    return alt.hconcat(projects, reached).properties(title=f"{area} over time")
