"""The import report: every row read is imported or rejected, and every problem is named."""

import io
from dataclasses import dataclass, field
from functools import cache

import pandas as pd

from kindred_map.text import spreadsheet_safe

ISSUE_COLUMNS = ("row", "name", "field", "level", "reason")
LEVELS = ("rejected", "warning")


def issues_for(records: pd.DataFrame, field_name: str, level: str, reason) -> pd.DataFrame:
    """Issue rows for ``records`` (a frame with ``row`` and ``name``): one per record.

    ``reason`` is one text for all, or a Series aligned with ``records``.
    """
    if level not in LEVELS:
        raise ValueError(f"issue level must be one of {LEVELS}, got {level!r}")
    if not len(records):
        return empty_issues()
    if isinstance(reason, pd.Series):
        reasons = reason.reindex(records.index)
    else:
        reasons = pd.Series(reason, index=records.index)
    return pd.DataFrame(
        {
            "row": records["row"].astype("int64"),
            "name": records["name"].astype("str") if "name" in records else "",
            "field": field_name,
            "level": level,
            "reason": reasons.astype("str"),
        }
    ).reset_index(drop=True)


def empty_issues() -> pd.DataFrame:
    """An issues table with no rows (a copy: the caller may add to it)."""
    return _empty_issues().copy()


@cache
def _empty_issues() -> pd.DataFrame:
    # Built once: making it costs ~8 ms, and a 100,000-row import asks for it ~40 times.
    return pd.DataFrame({column: pd.Series(dtype="str") for column in ISSUE_COLUMNS}).astype(
        {"row": "int64"}
    )


@dataclass
class ImportReport:
    """What happened to each row of one file."""

    file: str
    rows: list[int]
    """Row numbers of every non-blank data row read (the spreadsheet's own numbering)."""
    issues: pd.DataFrame
    records: int = 0
    """Distinct projects produced (rows describing the same project are merged)."""
    columns: dict[str, list[str]] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    blank_rows: list[int] = field(default_factory=list)
    header_row: int | None = None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    store: str | None = None
    new: int | None = None
    updated: int | None = None
    unchanged: int | None = None
    import_id: int | None = None
    """The import's number in the store's log (for `kindred_map.stewardship.undo_import`)."""
    merged: int | None = None
    """Projects of the file merged into a stored likely duplicate by the editor's choice
    (`kindred_map.duplicates`): counted among ``updated`` or ``unchanged`` too."""
    skipped: int | None = None
    """Rows the editor chose to skip as likely duplicates: counted among the rejected too."""

    @property
    def rows_read(self) -> int:
        return len(self.rows)

    @property
    def rejected_rows(self) -> list[int]:
        return sorted(set(self.issues.loc[self.issues["level"] == "rejected", "row"]))

    @property
    def rejected(self) -> int:
        return len(self.rejected_rows)

    @property
    def imported(self) -> int:
        return self.rows_read - self.rejected

    @property
    def warned(self) -> int:
        """Imported rows with at least one warning."""
        warned = set(self.issues.loc[self.issues["level"] == "warning", "row"])
        return len(warned - set(self.rejected_rows))


def build_report(file: str, rows, issues: list[pd.DataFrame], **details) -> ImportReport:
    """Collect the issues of every stage, sorted by row, into one report."""
    frames = [frame for frame in issues if len(frame)]
    table = pd.concat(frames, ignore_index=True) if frames else empty_issues()
    table["level"] = pd.Categorical(table["level"], categories=LEVELS)
    table = table.sort_values(["row", "level"], kind="stable").reset_index(drop=True)
    table["level"] = table["level"].astype("str")
    return ImportReport(file=file, rows=[int(r) for r in rows], issues=table, **details)


def to_text(report: ImportReport, limit: int | None = 200) -> str:
    """The report as plain text for a terminal or a printout (``limit`` caps the issue lines)."""
    lines = [f"Import report: {report.file}"]
    if report.encoding:
        lines.append(f"  read as {report.encoding}")
    if report.header_row:
        lines.append(f"  header on row {report.header_row}")
    lines.extend(f"  {note}" for note in report.notes)
    recognised = ", ".join(f"{name} <- {' + '.join(cols)}" for name, cols in report.columns.items())
    if recognised:
        lines.append(f"  columns: {recognised}")
    if report.ignored_columns:
        lines.append(f"  columns not imported: {', '.join(report.ignored_columns)}")
    lines.append(
        f"Rows read: {report.rows_read:,} = imported {report.imported:,} + "
        f"rejected {report.rejected:,}"
    )
    merged = report.imported - report.records
    detail = f" ({merged:,} duplicate rows merged)" if merged else ""
    lines.append(f"Projects: {report.records:,}{detail}; rows with warnings: {report.warned:,}")
    if report.blank_rows:
        lines.append(f"Blank rows skipped: {_ranges(report.blank_rows)}")
    if report.store:
        chosen = ""
        if report.merged or report.skipped:
            chosen = (
                f" ({report.merged or 0:,} merged into likely duplicates, "
                f"{report.skipped or 0:,} skipped by choice)"
            )
        lines.append(
            f"Store {report.store}: {report.new or 0:,} new, {report.updated or 0:,} updated, "
            f"{report.unchanged or 0:,} unchanged{chosen}"
        )
    if len(report.issues):
        lines.append("")
        lines.append("Row  Level     Field               Reason")
        shown = report.issues if limit is None else report.issues.head(limit)
        for issue in shown.itertuples():
            name = f" [{issue.name}]" if issue.name else ""
            lines.append(f"{issue.row:<4} {issue.level:<9} {issue.field:<19} {issue.reason}{name}")
        hidden = len(report.issues) - len(shown)
        if hidden:
            lines.append(f"... and {hidden:,} more: see the CSV report")
    return "\n".join(lines)


def to_csv_bytes(report: ImportReport) -> bytes:
    """The issues as CSV (UTF-8 with BOM so that Excel shows accented names correctly)."""
    buffer = io.StringIO()
    spreadsheet_safe(report.issues[list(ISSUE_COLUMNS)]).to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8-sig")


def _ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
