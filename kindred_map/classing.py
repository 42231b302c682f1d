"""Colour classes of a measure: the palettes and class breaks every map shares (the dashboard,
the printed map and the council pack's HTML map), so one measure looks the same in each.

Below `export` (it needs only `figures`' measures): the pack's map writer imports it without
reaching `view`, `freshness` or `colours`, which sit above `export`."""

import math

import numpy as np
import pandas as pd

from kindred_map.figures import GAP_MEASURES, MEASURES
from kindred_map.schema import project_types

AREA_OPACITY = 0.55
"""Fill opacity of the shaded areas (every map); the legend's swatches use the same."""
SEQUENTIAL_COLOURS = ("#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494")
"""ColorBrewer YlGnBu, for measures where more is better (projects, per 10,000): sequential,
safe for the common colour-vision deficiencies."""
WORSE_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
"""ColorBrewer YlOrRd, for measures where more is worse (gap score, per 1,000): a distinct
warm ramp, so that "dark" never means good on one map and bad on the next."""
DIRECTIONS = {
    "projects": "Darker blue = more projects (more is better)",
    "per_10k": "Darker blue = more projects per resident (more is better)",
    "imd_decile": "Red = most deprived, blue = least deprived",
    "gap_score": "Darker red = more need-weighted people beyond reach (more is worse)",
    "gap_per_1000": "Darker red = bigger gap for the population (more is worse)",
}
"""Which way is good, said under each measure's legend."""


IMD_COLOURS = (
    "#a50026",
    "#d73027",
    "#f46d43",
    "#fdae61",
    "#fee090",
    "#e0f3f8",
    "#abd9e9",
    "#74add1",
    "#4575b4",
    "#313695",
)
"""ColorBrewer RdYlBu (colour-blind safe) for IMD deciles 1 (red, most deprived) to 10."""


ZERO_COLOUR = "#ececec"


NO_DATA_COLOUR = "#bdbdbd"


MAX_CLASSES = 5


def number_text(value, decimals: int) -> str:
    if value is None or pd.isna(value):
        return "no data"
    return f"{value:,.{decimals}f}"


def _nice_upper(value: float, decimals: int) -> float:
    factor = 10**decimals
    return math.ceil(value * factor - 1e-9) / factor


def colour_classes(values: pd.Series, measure: str) -> tuple[pd.Series, list[dict]]:
    """The fill colour of each value and the legend classes ({label, colour}) for ``measure``.

    IMD deciles get one colour each (1 red = most deprived, 10 blue). Other measures: zero has
    its own pale class, positive values up to five classes of about equal size (quantiles,
    rounded to the measure's precision), blue where more is better and red where more is worse
    (see DIRECTIONS). Missing values are grey "no data"."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    colours = pd.Series(NO_DATA_COLOUR, index=values.index, dtype="str")
    classes = []
    if measure == "imd_decile":
        for decile, colour in enumerate(IMD_COLOURS, start=1):
            colours[numbers == decile] = colour
            classes.append({"label": str(decile), "colour": colour})
    else:
        decimals = MEASURES[measure]["decimals"]
        if (numbers == 0).any():
            colours[numbers == 0] = ZERO_COLOUR
            classes.append({"label": "0", "colour": ZERO_COLOUR})
        positive = numbers[numbers > 0]
        if len(positive):
            uppers = _class_uppers(positive, decimals)
            ramp = WORSE_COLOURS if measure in GAP_MEASURES else SEQUENTIAL_COLOURS
            palette = ramp[-len(uppers) :] if len(uppers) > 1 else (ramp[3],)
            lower = positive.min()
            places = np.searchsorted(np.asarray(uppers), positive.to_numpy(), side="left")
            colours[positive.index] = [palette[min(p, len(palette) - 1)] for p in places]
            step = 10**-decimals
            for upper, colour in zip(uppers, palette, strict=True):
                low, high = number_text(lower, decimals), number_text(upper, decimals)
                label = low if low == high else f"{low} to {high}"
                classes.append({"label": label, "colour": colour})
                lower = upper + step
    if numbers.isna().any():
        classes.append({"label": "no data", "colour": NO_DATA_COLOUR})
    return colours, classes


def _class_uppers(positive: pd.Series, decimals: int) -> list[float]:
    distinct = np.unique(np.round(positive.to_numpy(), decimals))
    if len(distinct) <= MAX_CLASSES:
        return [float(v) for v in distinct]
    quantiles = np.quantile(positive.to_numpy(), np.linspace(0, 1, MAX_CLASSES + 1)[1:])
    uppers = sorted({_nice_upper(q, decimals) for q in quantiles})
    uppers[-1] = max(uppers[-1], _nice_upper(positive.max(), decimals))
    return uppers


def type_legend(shown: pd.DataFrame) -> list[dict]:
    """Legend entries (label, colour, count) for the project types present."""
    types = project_types()
    counts = shown["type"].value_counts()
    return [
        {"label": spec["label"], "colour": spec["colour"], "count": int(counts.get(kind, 0))}
        for kind, spec in types.items()
        if counts.get(kind, 0)
    ]
