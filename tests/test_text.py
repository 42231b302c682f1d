"""Markdown escaping: text from users, files and links renders exactly as typed."""

import html

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from kindred_map.text import WORD_JOINER, md_escape, md_table

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
