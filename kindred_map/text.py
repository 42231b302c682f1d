"""Text from users, files and links made safe: Markdown shown as typed, CSV cells kept text."""

import re
import string

import pandas as pd

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_BREAKS = re.compile(r"[\t\n\v\f\r\u2028\u2029]+")
WORD_JOINER = "\u2060"
_AUTOLINKS = re.compile(r"(\\:)(?=\\/\\/)|(www)(?=\\\.)|(\\@)", re.IGNORECASE)
"""Where GitHub-flavoured Markdown would start a bare link ("://", "www.", "@"), found after
escaping. Streamlit finds those links in the text after escapes are resolved, so backslashes
cannot stop them: an invisible word joiner after the trigger does."""


def md_escape(value) -> str:
    """``value`` as Markdown that renders exactly as typed, on one line.

    Every ASCII punctuation character gets a backslash (CommonMark allows escaping any of
    them), so no link, image, emphasis, heading, HTML, ``:colour[...]`` directive, ``$``
    maths can form; bare URLs and e-mail addresses get an invisible WORD_JOINER so they are
    not made links (see _AUTOLINKS); tabs and line breaks become spaces and the ends are
    trimmed, so text cannot start a heading, list or code block."""
    text = "" if value is None else str(value)
    escaped = _PUNCTUATION.sub(r"\\\1", _BREAKS.sub(" ", text).strip())
    return _AUTOLINKS.sub(lambda found: found.group() + WORD_JOINER, escaped)


def md_table(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """A copy of ``frame`` with the text ``columns`` escaped, for ``st.table`` (whose cells
    are Markdown)."""
    escaped = frame.copy()
    for column in columns:
        escaped[column] = escaped[column].map(md_escape)
    return escaped


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes Excel, LibreOffice or Google Sheets read a CSV cell as a formula."""


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells that a spreadsheet would run as a formula (starting
    with = + - @, a tab or a carriage return) begin with ``'`` instead: OWASP's advice for CSV
    files, so a partner's ``=HYPERLINK(...)`` opens as text in a council's Excel. Number, date
    and boolean columns are left alone; so is every other cell."""
    safe = frame.copy()
    for column in safe.columns:
        values = safe[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        risky = values.map(
            lambda value: isinstance(value, str) and value.startswith(FORMULA_STARTS)
        )
        if risky.any():
            safe[column] = values.astype("object").where(
                ~risky, "'" + values.astype("object").where(risky, "")
            )
    return safe


def cell_text(value) -> str:
    """A table cell as text: blank for None and missing values, else stripped."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value).strip()


def map_distinct(values: pd.Series, function) -> pd.Series:
    """``values.map(function)``, calling it once per distinct value: text columns of a file
    or a store repeat a few values (types, postcodes) over many rows."""
    distinct = values.drop_duplicates()
    return values.map(dict(zip(distinct, map(function, distinct), strict=True)))
