"""A creator whose id is hostile (quotes, a script, Markdown, a very long id, right-to-left
text) sees My share's payout sections (payouts, payout profile, claims) with the id as the
characters it is: never HTML, never Markdown, and nothing raised (AppTest)."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from contract import schema as S
from dashboard import config
from dashboard.text import WORD_JOINER, plain
from tests.dashboard.test_pages import APP, TIMEOUT, login, rendered, texts

SCRIPT = "<script>alert(1)</script>"
HOSTILE_IDS = {
    "quotes": "c\"quoted\" 'single' `back`",
    "script": f"c{SCRIPT}<img src=x onerror=alert(2)>",
    "markdown": "c **bold** _em_ [link](http://e.test) ![img](http://e.test/x.png) # h $x$ :smile:",
    "long": "c" + "x" * (S.MAX_ID_CHARS - len("-clip1") - 1),  # its clip ids fit too
    "rtl": "c\u202eevil\u202c \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
}
PASSWORD = "hostile-pass"


@pytest.fixture(params=list(HOSTILE_IDS), ids=list(HOSTILE_IDS))
def hostile(request, tmp_path, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """A ledger with one batch paying the hostile creator: the payout held (tax form
    submitted, not accepted), a payout method on file, and a claim quoting the id."""
    from dashboard.auth import add_user
    from ledger.store import open_store, write_session
    from ledger.store.claims import open_claim
    from ledger.store.payout_states import release_or_hold
    from ledger.store.profiles import set_profile
    from tests.ledger.store.payout_kit import post

    cid = HOSTILE_IDS[request.param]
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_store(url)
    post(engine, "2026-10", {cid: 5000, "plain": 4000})
    with write_session(engine) as s, s.begin():
        set_profile(s, cid, payout_method=cid, tax_form="submitted")
        release_or_hold(s, cid, source="profile")
        open_claim(s, creator_id=cid, kind="wrong_amount", period="2026-10", text=cid,
                   opened_by=cid)
        add_user(s, "hostile", PASSWORD, "creator", cid)
    engine.dispose()
    monkeypatch.setenv(config.DB_ENV, url)
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    return cid


def test_a_hostile_creator_id_is_text_in_the_payout_sections(hostile: str) -> None:
    at = login(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "hostile", PASSWORD)
    at.switch_page("views/my_share.py").run()
    assert not at.exception
    shown = texts(at)
    assert "Your payouts" in shown and "Payout profile" in shown and "Claims" in shown
    held = [w.value for w in at.warning if "is held" in w.value]
    assert len(held) == 1 and "tax form" in held[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Payout method"] == "on file"  # the token (the id) is never shown
    assert f"Creator id {hostile}" in [shows(c.value) for c in at.caption]  # exactly
    assert f"My share · Creator {hostile}" in [shows(t.value) for t in at.title]
    claims = at.dataframe[-1].value
    assert claims["about"].to_list() == [hostile]  # a table cell: text by construction
    elements = [*at.markdown, *at.caption, *at.title, *at.subheader, *at.warning, *at.success,
                *at.info, *at.error]
    for source in (str(e.value) for e in elements):
        assert re.search(r"(?<!\\)<", source) is None  # no tag can open
        if hostile in shows(source):
            assert plain(hostile) in source  # every character escaped, as plain() promises
    assert sum(hostile in shows(str(e.value)) for e in elements) >= 2


def shows(markdown: str) -> str:
    """The text a Markdown source shows (escapes resolved, invisible word joiners gone)."""
    return rendered(markdown).replace(WORD_JOINER, "")


@pytest.mark.parametrize("cid", list(HOSTILE_IDS.values()), ids=list(HOSTILE_IDS))
def test_statement_file_names_of_hostile_ids_are_safe(cid: str) -> None:
    """My share names its statement downloads ``statement-<file_stem(id)>...``: letters,
    digits, '.', '_' and '-' only, whatever the id holds."""
    from dashboard.text import file_stem

    stem = file_stem(cid, "creator")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", stem), stem
    assert not stem.endswith(("-", "."))
