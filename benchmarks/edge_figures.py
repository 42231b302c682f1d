"""What counting the projects just outside the region changes: residents newly within reach.

Not a speed benchmark: the measured figures behind the README's *Across the boundary* section.
On the shipped sample store (real projects; synthetic examples left out, as in every figure),
at the default reach (800 m), coverage is computed twice: counting the projects outside the
region (the default) and inside-only. Per borough: the residents who move from beyond reach to
within reach; per ward: how the gap rank moves, for the wards whose gap changed. For all
project types, and for warm spaces (warm_space, place_of_welcome: the ring's types) alone.
Writes benchmarks/results/edges.md.

Run: PYTHONPATH=. python benchmarks/edge_figures.py
"""

from pathlib import Path

from kindred_map import coverage, export, store

RESULTS = Path(__file__).parent / "results" / "edges.md"
TYPE_SETS = {
    "all project types": None,
    "warm spaces (warm_space, place_of_welcome)": "warm_space,place_of_welcome",
}
TOP_WARDS = 5


def compare(projects, types) -> tuple[dict, dict]:
    """Headlines and boundary_effect tables (borough, ward) with and without the ring."""
    counted = coverage.assess(projects, types, coverage.DEFAULT_DISTANCE_M)
    inside = coverage.assess(projects, types, coverage.DEFAULT_DISTANCE_M, include_outside=False)
    effects = {
        level: coverage.boundary_effect(counted, inside, level) for level in ("borough", "ward")
    }
    return {"counted": counted.headline(), "inside": inside.headline()}, effects


def section(title: str, headlines: dict, effects: dict) -> list[str]:
    counted, inside = headlines["counted"], headlines["inside"]
    borough = effects["borough"]
    lines = [
        f"## {title}",
        "",
        f"{counted['outside_projects']} of {counted['projects']} projects lie outside the "
        f"region. Within {counted['distance_m']:,.0f} m: {inside['reached']:,} residents "
        f"({inside['pct_covered']:.2f}%) inside-only, {counted['reached']:,} "
        f"({counted['pct_covered']:.2f}%) counting them: "
        f"{counted['reached'] - inside['reached']:,} newly within reach.",
        "",
        "| Borough | Residents | Beyond reach, inside-only | Beyond reach, counted "
        "| Newly within reach |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in borough.itertuples():
        lines.append(
            f"| {row.LAD25NM} | {row.population:,} | {row.beyond_reach_inside_only:,} | "
            f"{row.beyond_reach:,} | {row.newly_within_reach:,} |"
        )
    wards = effects["ward"]
    moved = wards[wards["newly_within_reach"] > 0].copy()
    moved["size"] = moved["rank_change"].abs()
    moved = moved.sort_values(
        ["size", "newly_within_reach", "WD24CD"], ascending=[False, False, True]
    )
    lines += [
        "",
        f"{len(moved)} wards have residents newly within reach. The {TOP_WARDS} whose gap rank "
        "(1 = biggest need-weighted gap of the 221) moves most:",
        "",
        "| Ward | Borough | Newly within reach | Gap score, inside-only -> counted "
        "| Gap rank, inside-only -> counted |",
        "|---|---|---:|---:|---:|",
    ]
    for row in moved.head(TOP_WARDS).itertuples():
        lines.append(
            f"| {row.WD24NM} | {row.LAD25NM} | {row.newly_within_reach:,} | "
            f"{row.gap_score_inside_only:,.0f} -> {row.gap_score:,.0f} | "
            f"{row.gap_rank_inside_only} -> {row.gap_rank} |"
        )
    knock_on = int(((wards["newly_within_reach"] == 0) & (wards["rank_change"] != 0)).sum())
    lines += [
        "",
        f"Only these wards' gaps moved. {knock_on} other wards' ranks shift by "
        f"{_shifts(wards)} as these pass them: knock-on, not a change in their own reach.",
    ]
    return [*lines, ""]


def _shifts(wards) -> str:
    still = wards.loc[wards["newly_within_reach"] == 0, "rank_change"].abs()
    still = still[still > 0]
    if still.empty:
        return "0"
    low, high = int(still.min()), int(still.max())
    return f"{low}" if low == high else f"{low} to {high}"


def main() -> None:
    projects = export.real_projects(store.read_projects())
    lines = [
        "# Across the boundary: residents newly within reach",
        "",
        "`PYTHONPATH=. python benchmarks/edge_figures.py` on the shipped sample store "
        f"({len(projects)} real projects), reach {coverage.DEFAULT_DISTANCE_M:,.0f} m (straight "
        "line), Census 2021 residents of the 9 boroughs only.",
        "",
    ]
    for title, types in TYPE_SETS.items():
        lines += section(title, *compare(projects, types))
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
