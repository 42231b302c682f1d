"""Markdown escaping: text from users, files and links renders exactly as typed."""

import html

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from kindred_map.text import md_escape, md_table

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
    body = rendered.removeprefix("<p>").removesuffix("</p>\n")
    assert html.unescape(body) == " ".join(payload.split("\n")), rendered


@given(st.text(max_size=60))
def test_any_text_renders_as_one_plain_paragraph(text):
    rendered = _rendered(md_escape(text))
    assert rendered.count("<") == rendered.count("<p>") + rendered.count("</p>")
    if text.split():
        body = html.unescape(rendered.removeprefix("<p>").removesuffix("</p>\n"))
        assert body.split() == text.replace("\0", "\ufffd").split(), "as typed, spacing aside"


def test_md_table_escapes_only_the_text_columns():
    frame = pd.DataFrame({"Name": ["[x](http://h)"], "Distance (m)": [12]})
    escaped = md_table(frame, ["Name"])
    assert escaped["Name"].item() == md_escape("[x](http://h)")
    assert escaped["Distance (m)"].item() == 12
    assert frame["Name"].item() == "[x](http://h)", "the original is left alone"
