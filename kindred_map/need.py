"""Need over time: IMD 2019 -> 2025 per LSOA 2021 and per ward, deanery and borough.

The reference table ``boundaries/imd_change.parquet`` (built by `build_imd_change`, from
``kindred-map build-boundaries``) holds, for each of the region's 1,408 LSOAs 2021, the IoD 2019
and IoD 2025 national rank, percentile and decile of the IMD and of the domains that matter for
social action (income, employment, health, barriers to housing and services, living
environment).

Moving IoD 2019 (published on LSOA 2011) onto LSOA 2021 uses the ONS LSOA 2011 -> 2021 lookup:

- unchanged (U): the 2011 LSOA's 2019 values, directly;
- split (S): each 2021 LSOA takes its single 2011 parent's 2019 values (exact for the parent; the
  parts may differ from it, which 2019 cannot tell);
- merged (M) and irregular (X): the population-weighted mean of the 2011 parents' 2019 ranks,
  weighted by the Census 2021 residents of the 2021 LSOA whose postcode lay in each parent (ONS
  May 2022 postcode lookup; equal weights if no resident can be placed); the decile is re-derived
  from that rank with the 2019 national decile cut-offs and the row is marked ``approximate``.
  The region has 3 merged LSOAs 2021 and no irregular ones.

IoD 2019 in ``../shared`` carries ranks and deciles, not scores, so change is measured on the
national ranking: the percentile (100 x rank / LSOAs in England: 32,844 in 2019, 33,755 in
2025; lower = more deprived) and the decile. A fall is relative: more deprived compared with
the rest of England. MHCLG warns that 2019 and 2025 ranks are not strictly comparable (new LSOAs
and method changes); read changes of a point or two as noise. Neither file carries IDACI or
IDAOPI indices (the 2025 indicators hold only their numerators, with no denominators or 2019
values), so they are left out.

Areas: the resident-weighted mean percentile and the resident-weighted median decile of each
domain, over the postcodes in the area (the population surface of `kindred_map.coverage`), and
the residents of LSOAs in deciles 1-2 each year. An area's need rose when its mean IMD
percentile fell by at least ``NEED_ROSE_POINTS`` or its median IMD decile fell.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from kindred_map import boundaries, coverage, files
from kindred_map.paths import BOUNDARIES_DIR

TABLE_NAME = "imd_change"
LSOAS_IN_ENGLAND = {2019: 32844, 2025: 33755}
"""LSOAs ranked by the IoD in England: 2011 LSOAs in 2019, 2021 LSOAs in 2025."""
DOMAINS = {
    "imd": ("IMD", "IMD", "Index of Multiple Deprivation"),
    "income": ("Income", "Income", "Income deprivation"),
    "employment": ("Employment", "Employment", "Employment deprivation"),
    "health": ("Health", "Health", "Health deprivation and disability"),
    "barriers": ("Housing_and_Access", "Housing_and_Services", "Barriers to housing and services"),
    "environment": ("Environment", "Environment", "Living environment deprivation"),
}
"""Short name -> (IoD 2019 column stem, IoD 2025 column stem, title)."""
TREATMENTS = {
    "U": "unchanged: the 2011 LSOA's 2019 values",
    "S": "split: the 2011 parent's 2019 values",
    "M": "merged: population-weighted mean of the 2011 parents' 2019 ranks, decile re-derived "
    "(approximate)",
    "X": "irregular: population-weighted mean of the 2011 parents' 2019 ranks, decile "
    "re-derived (approximate)",
}
NEED_ROSE_POINTS = 1.0
"""An area's need rose when its mean IMD percentile fell by at least this many points (or its
median IMD decile fell)."""
RAW = {
    "iod2019": "iod2019_lsoa11/iod2019_lsoa11_region.csv",
    "iod2025": "iod2025_lsoa21/iod2025_lsoa21_region.csv",
    "lookup": "ons_lookups/lsoa11_to_lsoa21_lad22_region.csv",
}
ATTRIBUTION = [
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: Ministry of Housing, Communities and Local Government, English Indices of "
    "Deprivation 2019.",
    boundaries.MHCLG,
    boundaries.ONS,
]


def decile_of_rank(rank, year: int) -> np.ndarray:
    """National decile (1 = most deprived 10%) of a rank among the year's LSOAs in England."""
    total = LSOAS_IN_ENGLAND[year]
    rank = np.asarray(rank, dtype=float)
    return np.clip(np.ceil(rank * 10 / total), 1, 10).astype("int64")


def percentile_of_rank(rank, year: int) -> np.ndarray:
    """100 x rank / LSOAs in England that year: 0-100, lower = more deprived."""
    return np.round(100 * np.asarray(rank, dtype=float) / LSOAS_IN_ENGLAND[year], 2)


def _raw(raw: Path, key: str) -> Path:
    path = Path(raw) / RAW[key]
    if not path.exists():
        raise ValueError(f"raw file missing: {path} (is --raw pointing at shared/data/raw?)")
    return path


def parent_weights(lookup: pd.DataFrame, postcode_lsoa11: pd.DataFrame) -> pd.DataFrame:
    """Weight of each (LSOA 2021, 2011 parent) pair: residents of the 2021 LSOA in postcodes of
    the parent, as a share; equal shares where no resident of the 2021 LSOA can be placed.

    ``postcode_lsoa11``: LSOA21CD, lsoa11cd and residents per live postcode."""
    pairs = lookup[["lsoa21_code", "lsoa11_code"]].drop_duplicates()
    people = (
        postcode_lsoa11.groupby(["LSOA21CD", "lsoa11cd"])["residents"]
        .sum()
        .rename("people")
        .reset_index()
    )
    pairs = pairs.merge(
        people,
        left_on=["lsoa21_code", "lsoa11_code"],
        right_on=["LSOA21CD", "lsoa11cd"],
        how="left",
    )
    pairs["people"] = pairs["people"].fillna(0).astype(float)
    total = pairs.groupby("lsoa21_code")["people"].transform("sum")
    count = pairs.groupby("lsoa21_code")["people"].transform("size")
    pairs["weight"] = np.where(total > 0, pairs["people"] / total.where(total > 0), 1 / count)
    return pairs[["lsoa21_code", "lsoa11_code", "weight"]]


def build_imd_change(raw: Path, lsoas: pd.DataFrame, postcode_lsoa11: pd.DataFrame) -> pd.DataFrame:
    """IoD 2019 and 2025 side by side per LSOA 2021 (see the module docstring for the rules).

    ``lsoas``: the built LSOA layer (LSOA21CD, LSOA21NM, LAD24CD, population);
    ``postcode_lsoa11``: LSOA21CD, lsoa11cd, residents per live postcode (merge weights)."""
    iod19 = pd.read_csv(_raw(raw, "iod2019"))
    iod25 = pd.read_csv(_raw(raw, "iod2025"))
    lookup = pd.read_csv(_raw(raw, "lookup"))
    codes = set(lookup["change_code"])
    if not codes <= set(TREATMENTS):
        raise ValueError(
            f"unknown LSOA change codes in the lookup: {sorted(codes - set(TREATMENTS))}"
        )
    lookup = lookup[lookup["lsoa21_code"].isin(lsoas["LSOA21CD"])]
    missing = set(lookup["lsoa11_code"]) - set(iod19["lsoa11_code"])
    if missing:
        raise ValueError(f"LSOAs 2011 without IoD 2019 figures: {sorted(missing)}")
    weights = parent_weights(lookup, postcode_lsoa11)
    ranks19 = weights.merge(iod19, on="lsoa11_code", how="left")
    out = pd.DataFrame({"LSOA21CD": lsoas["LSOA21CD"].astype(str).to_numpy()})
    out["LSOA21NM"] = lsoas["LSOA21NM"].to_numpy()
    out["LAD24CD"] = lsoas["LAD24CD"].to_numpy()
    out["population"] = lsoas["population"].astype("int64").to_numpy()
    grouped = lookup.groupby("lsoa21_code")
    # A 2021 LSOA met by several lookup rows of different kinds takes the least exact one.
    order = {"U": 0, "S": 1, "M": 2, "X": 3}
    change = grouped["change_code"].agg(lambda c: max(c, key=order.get))
    parents = grouped["lsoa11_code"].agg(lambda c: ";".join(sorted(set(c))))
    out["change_code"] = out["LSOA21CD"].map(change)
    if out["change_code"].isna().any():
        lost = out.loc[out["change_code"].isna(), "LSOA21CD"].tolist()
        raise ValueError(f"LSOAs 2021 missing from the 2011 -> 2021 lookup: {lost}")
    out["lsoa11_codes"] = out["LSOA21CD"].map(parents)
    out["treatment"] = out["change_code"].map(TREATMENTS)
    out["approximate"] = out["change_code"].isin(["M", "X"])
    iod25 = iod25.set_index("lsoa21_code")
    for short, (stem19, stem25, _title) in DOMAINS.items():
        weighted = ranks19.assign(r=ranks19[f"{stem19}_rank"] * ranks19["weight"])
        rank19 = weighted.groupby("lsoa21_code")["r"].sum()
        published19 = ranks19.groupby("lsoa21_code")[f"{stem19}_decile"].first()
        rank19 = out["LSOA21CD"].map(rank19)
        exact = ~out["approximate"]
        out[f"{short}_rank_2019"] = rank19.round(1)
        out[f"{short}_decile_2019"] = np.where(
            exact, out["LSOA21CD"].map(published19), decile_of_rank(rank19, 2019)
        ).astype("int64")
        out[f"{short}_rank_2025"] = out["LSOA21CD"].map(iod25[f"{stem25}_rank"]).astype("int64")
        out[f"{short}_decile_2025"] = out["LSOA21CD"].map(iod25[f"{stem25}_decile"]).astype("int64")
        out[f"{short}_pct_2019"] = percentile_of_rank(rank19, 2019)
        out[f"{short}_pct_2025"] = percentile_of_rank(out[f"{short}_rank_2025"], 2025)
        out[f"{short}_pct_change"] = (out[f"{short}_pct_2025"] - out[f"{short}_pct_2019"]).round(2)
        out[f"{short}_decile_change"] = out[f"{short}_decile_2025"] - out[f"{short}_decile_2019"]
    out["imd_score_2025"] = out["LSOA21CD"].map(iod25["IMD_score"]).astype(float)
    return out.sort_values("LSOA21CD").reset_index(drop=True)


def table_metadata(table: pd.DataFrame) -> dict:
    """Source, licence, attribution, method and counts of the reference table."""
    counts = table["change_code"].value_counts().reindex(list(TREATMENTS), fill_value=0)
    return {
        "name": TABLE_NAME,
        "title": "IMD 2019 -> 2025 per LSOA 2021",
        "source": "MHCLG English Indices of Deprivation 2019 (LSOA 2011) and 2025 (LSOA 2021), "
        "via humaniverse/IMD; ONS LSOA (2011) to LSOA (2021) lookup and Census 2021, via "
        "humaniverse/geographr and demographr",
        "vintage": "IoD 2019 (26 Sep 2019); IoD 2025 (30 Oct 2025); LSOA 2021",
        "licence": boundaries.OGL,
        "attribution": ATTRIBUTION,
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "treatments": TREATMENTS,
        "lsoas": int(len(table)),
        "lsoas_by_change_code": {code: int(n) for code, n in counts.items()},
        "approximate_lsoas": int(table["approximate"].sum()),
        "lsoas_in_england": {str(year): n for year, n in LSOAS_IN_ENGLAND.items()},
    }


def write_imd_change(table: pd.DataFrame, directory: Path) -> None:
    """Write the table as Parquet with its ``.meta.json`` beside it."""
    directory = Path(directory)
    files.write_with(
        directory / f"{TABLE_NAME}.parquet",
        lambda p: table.to_parquet(p, index=False, compression="zstd"),
    )
    text = json.dumps(table_metadata(table), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    files.write_bytes(directory / f"{TABLE_NAME}.meta.json", text.encode("utf-8"))


def load_imd_change(directory: Path = BOUNDARIES_DIR) -> pd.DataFrame:
    """The shipped IMD 2019 -> 2025 table per LSOA 2021."""
    path = Path(directory) / f"{TABLE_NAME}.parquet"
    if not path.exists():
        raise ValueError(f"{path} missing; run `kindred-map build-boundaries`")
    return boundaries.read_parquet(path)


def imd_change_metadata(directory: Path = BOUNDARIES_DIR) -> dict:
    """The reference table's metadata (source, licence, attribution, method)."""
    path = Path(directory) / f"{TABLE_NAME}.meta.json"
    if not path.exists():
        raise ValueError(f"{path} missing; run `kindred-map build-boundaries`")
    return json.loads(path.read_text(encoding="utf-8"))


def need_by_area(
    level: str, population: pd.DataFrame | None = None, table: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Need 2019 -> 2025 per ward, deanery or borough, weighted by residents.

    Columns: code, name, population; ``imd_pct_2019``/``_2025``/``_change`` (mean national
    percentile), the median decile 2019 and 2025 and its change for the IMD and each domain,
    residents of LSOAs in IMD deciles 1-2 each year, residents whose 2019 figures are
    approximate (merged LSOAs), and ``need_rose``."""
    if level not in coverage.AREA_LEVELS:
        raise ValueError(
            f"unknown level {level!r}; choose one of {', '.join(coverage.AREA_LEVELS)}"
        )
    code, name = coverage.LEVELS[level]
    points = coverage.population_points() if population is None else population
    table = load_imd_change() if table is None else table
    lsoa = table.set_index("LSOA21CD")
    frame = points[[code, name, "LSOA21CD", "residents"]].copy()
    frame = frame[frame[code].notna()]
    unknown = set(frame["LSOA21CD"]) - set(lsoa.index)
    if unknown:
        raise ValueError(f"postcodes in LSOAs without IMD change figures: {sorted(unknown)[:5]}")
    for column in ("imd_pct_2019", "imd_pct_2025", "approximate"):
        frame[column] = frame["LSOA21CD"].map(lsoa[column])
    frame["w19"] = frame["imd_pct_2019"] * frame["residents"]
    frame["w25"] = frame["imd_pct_2025"] * frame["residents"]
    for year in (2019, 2025):
        deprived = frame["LSOA21CD"].map(lsoa[f"imd_decile_{year}"]).isin(coverage.DEPRIVED_DECILES)
        frame[f"d12_{year}"] = np.where(deprived, frame["residents"], 0)
    frame["approx"] = np.where(frame["approximate"].astype(bool), frame["residents"], 0)
    sums = frame.groupby([code, name], sort=True)[
        ["residents", "w19", "w25", "d12_2019", "d12_2025", "approx"]
    ].sum()
    out = sums.reset_index().rename(columns={"residents": "population"})
    people = out["population"].where(out["population"] > 0)
    out["imd_pct_2019"] = (out.pop("w19") / people).round(2)
    out["imd_pct_2025"] = (out.pop("w25") / people).round(2)
    out["imd_pct_change"] = (out["imd_pct_2025"] - out["imd_pct_2019"]).round(2)
    for short in DOMAINS:
        for year in (2019, 2025):
            frame["decile"] = frame["LSOA21CD"].map(lsoa[f"{short}_decile_{year}"])
            median = coverage.weighted_median(frame, code, "decile", "residents")
            out[f"{short}_decile_{year}"] = out[code].map(median).astype("Int64")
        out[f"{short}_decile_change"] = out[f"{short}_decile_2025"] - out[f"{short}_decile_2019"]
    out = out.rename(
        columns={
            "d12_2019": "residents_deciles_1_2_2019",
            "d12_2025": "residents_deciles_1_2_2025",
            "approx": "residents_approximate_2019",
        }
    )
    out["change_deciles_1_2"] = (
        out["residents_deciles_1_2_2025"] - out["residents_deciles_1_2_2019"]
    )
    out["need_rose"] = (out["imd_pct_change"] <= -NEED_ROSE_POINTS) | (
        out["imd_decile_change"] < 0
    ).fillna(False)
    out["need_rose"] = out["need_rose"].astype(bool)
    out[name] = out[name].astype(str)
    return out


REACH_BASES = ("now", "between dates")


def need_and_reach(
    need: pd.DataFrame, now: pd.DataFrame, before: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The need table with coverage, and ``need_rose_reach_not`` for places where need rose and
    reach did not.

    ``now``/``before``: coverage tables (`CoverageResult.by_area`) of the same level. With
    ``before`` (coverage as of an earlier date, from history), reach did not improve when
    ``pct_covered`` now is not above ``pct_covered`` then (``reach_basis`` "between dates").
    Without it, the only evidence is today's coverage: reach "did not" when ``pct_covered`` is
    below the region's share covered (``reach_basis`` "now", i.e. low coverage now)."""
    code = need.columns[0]
    keep = [code, "reached", "beyond_reach", "pct_covered"]
    out = need.merge(now[keep], on=code, how="left", validate="1:1")
    if before is None:
        region = 100 * now["reached"].sum() / max(int(now["population"].sum()), 1)
        out["reach_basis"] = REACH_BASES[0]
        out["pct_covered_region"] = round(float(region), 2)
        not_improved = out["pct_covered"] < region
    else:
        then = before[[code, "pct_covered"]].rename(columns={"pct_covered": "pct_covered_before"})
        out = out.merge(then, on=code, how="left", validate="1:1")
        out["reach_basis"] = REACH_BASES[1]
        not_improved = ~(out["pct_covered"] > out["pct_covered_before"])
    out["reach_not_improved"] = not_improved.fillna(True).astype(bool)
    out["need_rose_reach_not"] = out["need_rose"] & out["reach_not_improved"]
    return out.sort_values(
        ["need_rose_reach_not", "imd_pct_change", code], ascending=[False, True, True]
    ).reset_index(drop=True)


def summary_text(table: pd.DataFrame, level: str, top: int = 10) -> str:
    """Printable lines: how many areas' need rose, and the first where reach did not follow."""
    code, name = coverage.LEVELS[level]
    rose = int(table["need_rose"].sum())
    flagged = table[table["need_rose_reach_not"]]
    basis = table["reach_basis"].iloc[0] if len(table) else REACH_BASES[0]
    words = "coverage below the region's" if basis == "now" else "coverage not improved"
    lines = [
        f"{level} areas: {len(table)}; need rose (IMD 2019 -> 2025) in {rose}; "
        f"need rose and reach did not ({words}) in {len(flagged)}"
    ]
    for row in flagged.head(top).itertuples(index=False):
        row = row._asdict()
        pct = row["pct_covered"]
        covered = "n/a" if pct is None or (isinstance(pct, float) and math.isnan(pct)) else pct
        lines.append(
            f"  {row[name]} ({row[code]}): IMD percentile {row['imd_pct_2019']} -> "
            f"{row['imd_pct_2025']}, decile {row['imd_decile_2019']} -> "
            f"{row['imd_decile_2025']}, {covered}% covered"
        )
    return "\n".join(lines)
