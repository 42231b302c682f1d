"""Markdown escaping: text from users, files and links renders exactly as typed."""

import html
import io

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from kindred_map.text import WORD_JOINER, md_escape, md_table, spreadsheet_safe

PAYLOADS = [
    "![x](http://evil.example/pixel.png)",
    "[click me](http://evil.example/phish)",
    "<http://evil.example/auto>",
    "<img src=x onerror=alert(1)>",
    "# Heading\n- item",
    "**bold** _em_ `code` ~~gone~~",
    "Hall {{7*7}} marker {#3}",
    "Café Zoë's \\ back\\slash | pipe",
    "1. numbered",
    "> quote",
]


def _rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("strikethrough").enable("table").render(markdown)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_escaped_text_renders_as_typed_with_no_markup(payload):
    rendered = _rendered(md_escape(payload))
    for tag in ("<img", "<a ", "<em>", "<strong>", "<code>", "<h1>", "<li>", "<s>", "<blockquote>"):
        assert tag not in rendered, (payload, rendered)
    body = html.unescape(rendered.removeprefix("<p>").removesuffix("</p>\n"))
    assert body.replace(WORD_JOINER, "") == " ".join(payload.split("\n")), rendered


@given(st.text(max_size=60))
def test_any_text_renders_as_one_plain_paragraph(text):
    rendered = _rendered(md_escape(text))
    assert rendered.count("<") == rendered.count("<p>") + rendered.count("</p>")
    if text.split():
        body = html.unescape(rendered.removeprefix("<p>").removesuffix("</p>\n"))
        typed = text.replace("\0", "\ufffd").replace(WORD_JOINER, "")
        assert body.replace(WORD_JOINER, "").split() == typed.split(), "as typed, spacing aside"


def test_md_table_escapes_only_the_text_columns():
    frame = pd.DataFrame({"Name": ["[x](http://h)"], "Distance (m)": [12]})
    escaped = md_table(frame, ["Name"])
    assert escaped["Name"].item() == md_escape("[x](http://h)")
    assert escaped["Distance (m)"].item() == 12
    assert frame["Name"].item() == "[x](http://h)", "the original is left alone"


@pytest.mark.parametrize(
    ("typed", "trigger"),
    [("see http://evil.example/x", "http:"), ("www.evil.example", "www"), ("me@evil.example", "@")],
)
def test_bare_links_are_broken_by_an_invisible_word_joiner(typed, trigger):
    """GFM finds bare links in the text after escapes are resolved (Streamlit does), so the
    escaped text must not hold "http://", "www." or "x@y.z" even once unescaped."""
    unescaped = md_escape(typed).replace("\\", "")
    assert trigger + WORD_JOINER in unescaped
    for pattern in ("://", "www.", "@evil"):
        assert pattern not in unescaped


def test_csv_cells_that_a_spreadsheet_would_run_stay_text():
    """OWASP's CSV advice: text starting = + - @ (or a tab or CR) gets a leading ', through
    every CSV the tool writes (exports, call sheet, import report); numbers are untouched."""
    from kindred_map import export, report

    frame = pd.DataFrame(
        {
            "name": ['=HYPERLINK("http://evil.example","x")', "+44 151 000", "@SUM(A1)", "Hall"],
            "note": ["-2+3", "\tTab", "fine = yes", None],
            "count": [-3, 4, 5, 6],
            "share": [-0.5, 1.0, 2.5, 3.0],
        }
    )
    safe = spreadsheet_safe(frame)
    assert safe["name"].tolist() == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'+44 151 000",
        "'@SUM(A1)",
        "Hall",
    ]
    assert safe["note"].tolist()[:3] == ["'-2+3", "'\tTab", "fine = yes"]
    assert safe["note"].isna().tolist() == [False, False, False, True]
    assert safe["count"].tolist() == [-3, 4, 5, 6] and safe["share"].iloc[0] == -0.5
    assert frame["name"].iloc[0].startswith("="), "the caller's frame is not changed"
    written = pd.read_csv(io.BytesIO(export.csv_bytes(frame)), encoding="utf-8-sig")
    assert not written["name"].str.startswith(("=", "+", "@")).any()
    assert written["count"].tolist() == [-3, 4, 5, 6]
    issues = pd.DataFrame(
        {"row": [2], "name": ["=1+1"], "field": ["name"], "level": ["warning"], "reason": ["x"]}
    )
    reported = report.ImportReport(file="f.csv", rows=[2], issues=issues)
    lines = report.to_csv_bytes(reported).decode("utf-8-sig").splitlines()
    assert lines[1].startswith("2,'=1+1,")
