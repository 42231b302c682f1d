"""Text from users, files and links made safe for Streamlit's Markdown (shown as typed)."""

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
