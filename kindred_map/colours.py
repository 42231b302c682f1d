"""The legend notes of a dashboard view (palettes, classes and type entries are `classing`)."""

import pandas as pd

from kindred_map import coverage, privacy
from kindred_map.figures import GAP_MEASURES
from kindred_map.view import View, type_words


def legend_notes(view: View, shown: pd.DataFrame) -> list[str]:
    """Notes under the legend: what is approximate, how home-run projects are drawn."""
    notes = []
    if view.measure in GAP_MEASURES:
        notes.append(
            f"Gap score: need-weighted residents beyond {view.distance:,} m (straight line) "
            f"of {type_words(view)}."
        )
    if view.measure == "imd_decile":
        notes.append("IMD 2025 decile 1 = the most deprived 10% of areas in England.")
    if view.measure == "imd_decile" and view.layer != "lsoa":
        notes.append("An area's decile: population-weighted median of its residents' LSOAs.")
    if view.layer == "deanery":
        notes.append("Deanery boundaries are approximate (derived), not official.")
    if view.gaps:
        notes.append(
            f"Dark veil, red edge: beyond {view.distance:,} m (straight line) of "
            f"{type_words(view)}."
        )
    if view.clusters:
        notes.append(
            f"Dashed black outlines: clusters of at least {view.min_samples} projects within "
            f"{view.eps:,} m of each other (DBSCAN, exploratory)."
        )
    if privacy.is_ward_only(shown).any():
        notes.append("Dashed outline: home-run project shown at its ward's centre.")
    if len(shown) and coverage.outside_mask(shown).any():
        reach = "not counted: inside-only is on" if view.inside_only else "reach only"
        notes.append(f"Hollow ring: outside the region ({reach}).")
    if len(shown) and shown["synthetic"].fillna(False).astype(bool).any():
        notes.append("Includes illustrative examples, not real projects (see popups).")
    return notes
