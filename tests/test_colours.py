"""Colours of the map: classes of a measure and the legend."""

import html

import numpy as np
import pandas as pd

from kindred_map import classing, colours, figures, maps

XSS = "<img src=x onerror=alert(1)>"


def test_colour_classes_give_every_value_a_legend_colour():
    values = pd.Series([0, 0, 1, 2, 3, 5, 8, 13, 21, 34, np.nan])
    fills, classes = classing.colour_classes(values, "projects")
    legend = {entry["colour"] for entry in classes}
    assert set(fills) <= legend
    assert fills.iloc[0] == classing.ZERO_COLOUR and fills.iloc[-1] == classing.NO_DATA_COLOUR
    order = [classing.SEQUENTIAL_COLOURS.index(c) for c in fills.iloc[2:-1]]
    assert order == sorted(order), "larger values never get a lighter colour"
    assert len(classes) <= classing.MAX_CLASSES + 2
    deciles, classes = classing.colour_classes(pd.Series([1, 10, 5]), "imd_decile")
    assert deciles.tolist() == [
        classing.IMD_COLOURS[0],
        classing.IMD_COLOURS[9],
        classing.IMD_COLOURS[4],
    ]
    assert [c["label"] for c in classes] == [str(d) for d in range(1, 11)]


def test_legend_is_plain_escaped_html():
    legend = maps.legend_html(
        "Ward: <b>Projects</b>",
        [{"label": "0", "colour": "#ececec"}, {"label": "1 to 3", "colour": "#41b6c4"}],
        [{"label": XSS, "colour": "#E69F00", "count": 1200}],
        ["Note & <i>caveat</i>"],
    )
    assert legend.startswith("<details open><summary>Ward: &lt;b&gt;Projects&lt;/b&gt;")
    assert html.escape(XSS) in legend and XSS not in legend
    assert "(1,200)" in legend and "Note &amp; &lt;i&gt;caveat&lt;/i&gt;" in legend
    assert f"background:#41b6c4;opacity:{maps.AREA_OPACITY}" in legend, "swatches as the map"


def test_more_is_worse_measures_get_their_own_ramp_and_say_which_way_is_good():
    values = pd.Series([1.0, 5.0, 9.0, 20.0, 40.0, 80.0])
    better, _ = classing.colour_classes(values, "per_10k")
    worse, _ = classing.colour_classes(values, "gap_score")
    assert set(better) <= set(classing.SEQUENTIAL_COLOURS)
    assert set(worse) <= set(classing.WORSE_COLOURS)
    assert not set(classing.SEQUENTIAL_COLOURS) & set(classing.WORSE_COLOURS)
    assert "more is better" in classing.DIRECTIONS["projects"]
    assert "more is worse" in classing.DIRECTIONS["gap_score"]
    assert set(classing.DIRECTIONS) == set(figures.MEASURES)


def test_legend_explains_the_hollow_rings_of_projects_outside_the_region():
    from kindred_map.view import View

    shown = pd.DataFrame(
        {
            "type": ["warm_space", "warm_space"],
            "location_precision": ["exact", "exact"],
            "synthetic": [False, False],
            "in_region": [True, False],
        }
    )
    notes = colours.legend_notes(View(), shown)
    assert "Hollow ring: outside the region (reach only)." in notes
    inside_only = colours.legend_notes(View(inside_only=True), shown)
    assert any("inside-only is on" in n for n in inside_only)
    assert not any("Hollow" in n for n in colours.legend_notes(View(), shown.iloc[:1]))
