"""Freshness of the directory: which records were checked lately, which need a call."""

from datetime import date

import pandas as pd

from kindred_map import privacy

FRESHNESS = {
    "checked": "checked in the last 12 months",
    "stale": "stale (last checked over 12 months ago)",
    "never": "never checked",
}
"""Freshness statuses (the dashboard's ``fresh`` filter values) and what they mean."""
STALE_MONTHS = 12
"""A record last checked longer ago than this is flagged: the project may have stopped."""


def _parse_dates(values: pd.Series) -> pd.Series:
    """Dates as the store writes them (ISO 8601), else day-first as in UK spreadsheets."""
    text = values.astype("object").where(values.notna(), "").astype(str).str.strip()
    text = text.where(text != "")
    iso = pd.to_datetime(text, errors="coerce", format="ISO8601")
    other = pd.to_datetime(text, errors="coerce", format="mixed", dayfirst=True)
    return iso.where(text.str.match(r"^\d{4}-\d{2}-\d{2}").fillna(False), other)


def stale_mask(last_checked: pd.Series, today: date | None = None) -> pd.Series:
    """True where ``last_checked`` is more than STALE_MONTHS before ``today`` (default: today).

    Missing or unreadable dates are not stale here: `check_status` says "not recorded"."""
    today = pd.Timestamp(today or date.today())
    cutoff = today - pd.DateOffset(months=STALE_MONTHS)
    checked = _parse_dates(last_checked)
    return (checked < cutoff).fillna(False).astype(bool)


def check_status(last_checked: pd.Series, today: date | None = None) -> pd.Series:
    """ "stale" (older than 12 months), "not recorded" or "" for each record."""
    checked = _parse_dates(last_checked)
    status = pd.Series("", index=last_checked.index, dtype="str")
    status[checked.isna().to_numpy()] = "not recorded"
    status[stale_mask(last_checked, today).to_numpy()] = "stale"
    return status


CALL_SHEET_COLUMNS = (
    "id",
    "name",
    "organisation",
    "type",
    "website",
    "address",
    "postcode",
    "ward",
    "last_checked",
    "checked_by",
)
"""The call sheet: who to ring or look up. The schema has no phone field: the website is the
contact. Built from the public view of each record (`kindred_map.privacy.public_records`): a
home-run (ward_only) project shows its public id, its scrubbed name and organisation, its
postcode district and no address."""


def status(projects: pd.DataFrame, today: date | None = None) -> pd.Series:
    """``checked``, ``stale`` or ``never`` per record, from ``last_checked`` (12 months, as the
    map's stale flag; an unreadable date counts as never checked)."""
    checks = check_status(projects["last_checked"], today)
    return checks.map({"": "checked", "stale": "stale", "not recorded": "never"})


def counts(projects: pd.DataFrame, today: date | None = None) -> dict[str, int]:
    """How many records are in each freshness status (every status named, zeros included)."""
    found = status(projects, today).value_counts()
    return {name: int(found.get(name, 0)) for name in FRESHNESS}


def currency_text(counts: dict[str, int]) -> str:
    """The visitor's one line on how current the data is, from `counts` of the projects shown:
    "Checked by staff in the last 12 months: 12 of 507 shown." (the full counts are the
    editor's)."""
    total = sum(counts.values())
    return f"Checked by staff in the last 12 months: {counts['checked']:,} of {total:,} shown."


def needs_checking(projects: pd.DataFrame, today: date | None = None) -> pd.DataFrame:
    """Stale and never-checked records, oldest check first (never checked before any date),
    then by name; with their ``freshness``. Illustrative (synthetic) records are left out:
    there is no one to call."""
    fresh = status(projects, today)
    real = ~projects["synthetic"].astype(bool) if "synthetic" in projects else True
    due = pd.DataFrame(projects[fresh.ne("checked") & real]).assign(freshness=fresh)
    when = due["last_checked"].where(due["freshness"].eq("stale"), "")  # ISO dates sort as text
    order = pd.DataFrame({"when": when, "name": due["name"].str.casefold()})
    return due.loc[order.sort_values(["when", "name"], kind="stable").index]


def call_sheet(projects: pd.DataFrame, today: date | None = None) -> pd.DataFrame:
    """The "needs checking" list as a call sheet for volunteers (CALL_SHEET_COLUMNS), from the
    records' public view: no position, and nothing of a home-run project that places it more
    precisely than its ward (not its address, full postcode, or an id or name that holds one)."""
    due = needs_checking(privacy.public_records(projects), today)
    sheet = pd.DataFrame({name: due[name] for name in CALL_SHEET_COLUMNS if name in due})
    sheet = sheet.assign(ward=due["WD24NM"])[list(CALL_SHEET_COLUMNS)].astype("object")
    return sheet.where(sheet.notna(), "").reset_index(drop=True)
