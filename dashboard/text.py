"""User-supplied strings on a page: shown as the characters they are, never as markup.

Rule: Streamlit renders titles, captions, labels and messages as Markdown; a
display name, username, id, reason or error text passes through :func:`plain`
before it reaches one of them, so ``![x](http://...)`` stays text and makes the
browser fetch nothing. Tables (``st.dataframe``) and charts show text as is.
"""

from __future__ import annotations

import re
import string

from ledger.i18n import N_

#: What a page shows when an error escapes it (the detail goes to the server log).
PAGE_FAILED = N_("This page could not be shown because of an error on the server. "
                 "The error has been logged; please try again later.")

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(name: str, fallback: str) -> str:
    """``name`` made safe for a download's file name: every run of characters other
    than letters, digits, '.', '_' and '-' one '-', at most 80 characters, no leading
    or trailing '-' or '.'; ``fallback`` when nothing is left."""
    stem = _UNSAFE_FILE_CHARS.sub("-", name).strip("-.")[:80].strip("-.")
    return stem or fallback


_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
#: Invisible, zero-width: breaks the patterns that GitHub-flavoured Markdown turns into links.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(://|(?i:www)\.|@)")


def plain(value: object) -> str:
    """``value`` as Markdown that renders to exactly its text on one line.

    Every ASCII punctuation character is backslash-escaped (CommonMark allows
    escaping any of them), so no link, image, emphasis, code span, HTML, math
    or emoji short code can form; line breaks and tabs become spaces. Bare
    addresses (``http://``, ``www.``, ``user@host``) would still become live
    links (GitHub-flavoured Markdown finds them in the text), so an invisible
    :data:`WORD_JOINER` is put inside each.

    >>> plain("![x](h/t.png)")
    '\\\\!\\\\[x\\\\]\\\\(h\\\\/t\\\\.png\\\\)'
    >>> plain("http://h") == "http\\\\:" + WORD_JOINER + "\\\\/\\\\/h"
    True
    """
    text = _AUTOLINK.sub(lambda m: m.group(0)[0] + WORD_JOINER + m.group(0)[1:],
                         " ".join(str(value).split()))
    return _PUNCTUATION.sub(r"\\\1", text)
