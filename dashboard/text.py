"""User-supplied strings on a page: shown as the characters they are, never as markup.

Rule: Streamlit renders titles, captions, labels and messages as Markdown; a
display name, username, id, reason or error text passes through :func:`plain`
before it reaches one of them, so ``![x](http://...)`` stays text and makes the
browser fetch nothing. Tables (``st.dataframe``) and charts show text as is.
"""

from __future__ import annotations

import re
import string

#: What a page shows when an error escapes it (the detail goes to the server log).
PAGE_FAILED = ("This page could not be shown because of an error on the server. "
               "The error has been logged; please try again later.")

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def plain(value: object) -> str:
    """``value`` as Markdown that renders to exactly its text on one line.

    Every ASCII punctuation character is backslash-escaped (CommonMark allows
    escaping any of them), so no link, image, emphasis, code span, HTML, math
    or emoji short code can form; line breaks and tabs become spaces.

    >>> plain("![x](http://h/t.png)")
    '\\\\!\\\\[x\\\\]\\\\(http\\\\:\\\\/\\\\/h\\\\/t\\\\.png\\\\)'
    """
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(value).split()))
