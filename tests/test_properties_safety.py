"""Properties of the helpers that keep names, terminals and logs safe, over any text."""

from __future__ import annotations

import json
import re
import string
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.display import json_for_terminal, one_line, printable
from sdtui.gallery.files import MAX_SLUG_BYTES, slugify
from sdtui.logging_setup import redact

ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=400)


@settings(max_examples=400)
@given(ANY_TEXT)
def test_slugs_are_safe_file_name_parts(text: str) -> None:
    slug = slugify(text)
    assert slug and re.fullmatch(r"[^\W_]+(-[^\W_]+)*", slug)
    assert len(slug.encode("utf-8")) <= MAX_SLUG_BYTES
    assert "/" not in slug and "\\" not in slug and not slug.startswith(".")


@settings(max_examples=400)
@given(ANY_TEXT)
def test_printable_text_holds_no_control_characters_but_newline_and_tab(text: str) -> None:
    shown = printable(text)
    assert all(unicodedata.category(ch) != "Cc" or ch in "\n\t" for ch in shown)
    assert len(shown) == len(text) and printable(shown) == shown
    line = one_line(text)
    assert "\n" not in line and "\t" not in line


@given(st.dictionaries(st.text(max_size=10), ANY_TEXT, max_size=4))
def test_json_for_terminal_keeps_the_data_and_escapes_c1_controls(data: dict) -> None:
    text = json_for_terminal(json.dumps(data, ensure_ascii=False))
    assert json.loads(text) == data
    assert not any(0x7F <= ord(ch) <= 0x9F for ch in text)


@given(
    st.text(max_size=50),
    st.text(alphabet=string.ascii_letters + string.digits, min_size=20, max_size=60),
    st.text(max_size=50),
)
def test_redaction_leaves_no_token_behind(before: str, secret: str, after: str) -> None:
    token = f"hf_{secret}"
    assert token not in redact(before + token + after)
