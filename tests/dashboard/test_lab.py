"""The policy lab's pure core: TOML writing, knobs, money formatting, comparison."""

from __future__ import annotations

import tomllib

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import schema as S
from dashboard import lab
from dashboard.data.creator import MATCHES, SEGMENT, TOP_MATCHES, clip_details
from dashboard.data.store import money_expr
from ledger.money import CURRENCY_EXPONENTS, format_minor
from ledger.policy import parse_policy
from tests.conftest import ROOT

keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
scalars = st.one_of(
    st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
)
docs = st.recursive(
    st.dictionaries(keys, scalars, max_size=4),
    lambda children: st.dictionaries(keys, st.one_of(scalars, children), max_size=4),
    max_leaves=12,
)


@given(docs)
def test_dump_toml_round_trips(doc):
    assert tomllib.loads(lab.dump_toml(doc)) == doc


@given(st.lists(st.integers(-10**15, 10**15), min_size=1, max_size=30),
       st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_money_expr_equals_format_minor(amounts, currency):
    df = pl.DataFrame({S.AMOUNT_MINOR: amounts})
    fast = df.select(money_expr(S.AMOUNT_MINOR, currency))[S.AMOUNT_MINOR].to_list()
    assert fast == [format_minor(a, currency) for a in amounts]


POLICIES = sorted((ROOT / "policies").glob("*.toml"))


@pytest.mark.parametrize("path", POLICIES, ids=[p.stem for p in POLICIES])
def test_unchanged_knobs_keep_the_text(path):
    text = path.read_text()
    assert lab.apply_knobs(text, lab.knobs_of(parse_policy(text))) == text


@pytest.mark.parametrize("path", POLICIES, ids=[p.stem for p in POLICIES])
def test_knobs_are_written_and_the_rest_kept(path):
    text = path.read_text()
    policy = parse_policy(text)
    knobs = lab.Knobs(weights={"attribution": 3.0, "corpus": 1.0, "user_centric": 0.0,
                               "equal": 0.0},
                      cap_share=0.05, min_payout="25", exclude_opted_out=False,
                      unattributed="withhold")
    edited = parse_policy(lab.apply_knobs(text, knobs))
    assert dict(edited.components) == {"attribution": 0.75, "corpus": 0.25}
    assert edited.rules.cap_share == 0.05 and edited.rules.min_payout == "25"
    assert not edited.rules.exclude_opted_out and edited.rules.unattributed == "withhold"
    # Everything the knobs do not touch is as it was.
    assert edited.rules.license_multipliers == policy.rules.license_multipliers
    assert (edited.pool_amount, edited.revenue_share, edited.currency, edited.corpus_by) == (
        policy.pool_amount, policy.revenue_share, policy.currency, policy.corpus_by)
    # Removing the cap removes the key.
    uncapped = parse_policy(lab.apply_knobs(text, lab.Knobs(**{**knobs.__dict__,
                                                               "cap_share": None})))
    assert uncapped.rules.cap_share is None


def test_normalise_weights():
    assert lab.normalise_weights({"a": 0.0, "b": 0.0}) == {"a": 0.0, "b": 0.0}
    assert lab.normalise_weights({"a": 1.0, "b": 3.0}) == {"a": 0.25, "b": 0.75}
    assert sum(lab.normalise_weights({"a": 0.1, "b": 0.2, "c": 0.35}).values()) == \
        pytest.approx(1.0, abs=1e-11)


def test_metrics_table_formats_every_metric():
    from ledger.fairness import METRICS

    metrics = pl.DataFrame({lab.METRIC: list(METRICS), lab.CURRENT: [123456.0, 3, 1500.0,
                            9000.0, 0.25, 0.1, 0.5], lab.EDITED: [123456.0, 4, 1400.0, 8000.0,
                            0.2, 0.08, 0.45]})
    table = lab.metrics_table(metrics, "USD")
    assert table.row(0) == ("Pool", "1,234.56 USD", "1,234.56 USD")
    assert table.row(1) == ("Creators paid", "3", "4")
    assert table.row(5) == ("Top 1% share", "10.00%", "8.00%")


@given(st.integers(0, 3000), st.integers(2, 600))
def test_thin_keeps_ends_and_order(n, max_points):
    points = pl.DataFrame({"x": list(range(n))})
    out = lab.thin(points, max_points)["x"].to_list()
    assert len(out) == min(n, max_points)
    assert out == sorted(set(out))
    if n:
        assert out[0] == 0 and out[-1] == n - 1


def test_clip_details_with_segments_and_prompts():
    """Matches per clip, the strongest ones with prompts, the best segment with its span."""
    earnings = pl.DataFrame({S.CLIP_ID: ["k1", "k2"], S.WEIGHT: [0.7, 0.3],
                             S.SHARE_OF_CREATOR: [0.7, 0.3], S.EARNED_MINOR_EST: [70.0, 30.0]})
    clips = pl.DataFrame({
        S.CLIP_ID: ["k1", "k1", "k2"], S.CREATOR_ID: ["c", "c", "c"],
        S.SEGMENT_ID: ["s0", "s1", "s0"], S.T_START: [0.0, 4.0, 0.0], S.T_END: [4.0, 9.5, 3.0],
        S.CAPTION: ["sea at dawn", "sea at dawn", "city"],
    })
    attr = pl.DataFrame({
        S.GENERATION_ID: ["g1", "g2", "g3", "g4"], S.CLIP_ID: ["k1", "k1", "k1", "k2"],
        S.CREATOR_ID: ["c"] * 4, S.RANK: [1, 2, 1, 3], S.SIMILARITY: [0.8, 0.95, 0.7, 0.6],
        S.WEIGHT: [0.5, 0.2, 0.9, 0.1], S.SEGMENT_ID: ["s0", "s1", "s0", "s0"],
    })
    gens = pl.DataFrame({S.GENERATION_ID: ["g1", "g2", "g3", "g4"],
                         S.PROMPT: ["waves", "surf", "tide", "street"]})
    out = clip_details(earnings, clips, attr, gens).sort(S.CLIP_ID)
    assert out[MATCHES].to_list() == [3, 1]
    assert out[TOP_MATCHES][0] == "g3: tide | g1: waves | g2: surf"  # by weight
    assert out[SEGMENT].to_list() == ["s1 (4.0–9.5 s)", "s0 (0.0–3.0 s)"]  # by similarity
    assert out[S.CAPTION].to_list() == ["sea at dawn", "city"]
    # Without attributions the earnings come back as they are.
    assert clip_details(earnings, None, None, None).equals(earnings)


@pytest.mark.parametrize("key", ["0\n", "a b", "", "é", "x.y", "[t]"])
def test_dump_toml_quotes_keys_that_are_not_bare(key):
    assert tomllib.loads(lab.dump_toml({key: 1, "t": {key: "v"}})) == {key: 1, "t": {key: "v"}}


# ---- several policies ----------------------------------------------------------------


def _allocation(lines: dict[str, tuple[int, int, int, int]], pool: int, withheld: int):
    """An Allocation from creator -> (allocated, carried_in, paid, carried_out)."""
    from ledger.allocate import Allocation

    ids = sorted(lines)
    frame = pl.DataFrame({
        S.CREATOR_ID: ids,
        S.ALLOCATED_MINOR: [lines[c][0] for c in ids],
        S.CARRIED_IN_MINOR: [lines[c][1] for c in ids],
        S.PAID_MINOR: [lines[c][2] for c in ids],
        S.CARRIED_OUT_MINOR: [lines[c][3] for c in ids],
        S.ELIGIBLE: [True] * len(ids),
    }, schema_overrides={c: pl.Int64 for c in (S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR,
                                                S.PAID_MINOR, S.CARRIED_OUT_MINOR)})
    return Allocation(frame, pool, "USD", withheld, "b")


def test_compare_many_counts_where_the_money_goes():
    a = _allocation({"x": (600, 50, 650, 0), "y": (400, 0, 400, 0)}, 1000, 0)
    b = _allocation({"x": (500, 50, 550, 0), "y": (200, 0, 0, 200)}, 1000, 300)
    table = lab.compare_many({"a": a, "b": b})
    assert table[lab.POLICY].to_list() == ["a", "b"]
    rows = {r[lab.POLICY]: r for r in table.iter_rows(named=True)}
    assert [rows["a"][c] for c in lab.MONEY_COLUMNS] == [50, 1050, 0, 0]
    assert [rows["b"][c] for c in lab.MONEY_COLUMNS] == [50, 550, 200, 300]
    for r in rows.values():  # every minor unit accounted for
        assert r["paid"] + r["carried_forward"] + r["withheld"] == r["pool"] + r["carried_in"]
    assert rows["b"]["creators_paid"] == 1
    shown = lab.many_table(table, "USD")
    assert shown["Policy"].to_list() == ["a", "b"]
    assert shown["Withheld"].to_list() == [format_minor(0, "USD"), format_minor(300, "USD")]
    assert shown["Carried forward"].to_list() == [format_minor(0, "USD"),
                                                  format_minor(200, "USD")]


def test_unique_labels():
    assert lab.unique_labels(["p", "p", "p (2)", "q"]) == ["p", "p (2)", "p (2) (2)", "q"]


@pytest.mark.parametrize("path", sorted((ROOT / "policies").glob("*.toml")))
def test_with_name_renames_and_keeps_the_rest(path):
    text = path.read_text()
    assert lab.with_name(text, parse_policy(text).name) == text
    hostile = 'q"uote\\ \u2603 ]\n[x'
    renamed = parse_policy(lab.with_name(text, hostile))
    original = parse_policy(text)
    assert renamed.name == hostile.strip()
    assert (renamed.components, renamed.rules) == (original.components, original.rules)


@pytest.mark.parametrize(("name", "file"), [
    ("default-edited", "default-edited.toml"), ("../../etc/passwd", "etc-passwd.toml"),
    ("a b/c\\d", "a-b-c-d.toml"), ("☃☃", "policy.toml"), (".hidden", "hidden.toml"),
    ("x" * 300, "x" * 80 + ".toml")])
def test_export_file_name_is_safe(name, file):
    assert lab.export_file_name(name) == file


def test_shipped_and_uploaded_policies(tmp_path):
    from contract.errors import ResidualsError
    from dashboard.data import policy_lab

    shipped = policy_lab.shipped_policies()
    assert set(shipped) >= {"default", "attribution", "hybrid-70-30"}
    assert all(parse_policy(t).name == n for n, t in shipped.items())
    text = shipped["default"].replace('name = "default"', 'name = "mine"')
    assert policy_lab.uploaded_policy("p.toml", text.encode()) == ("mine", text)
    for data, words in ((b"\xff\xfe", "not UTF-8"), (b"[components]\nbogus = 1.0\n",
                                                    "components.bogus"),
                        (b"x" * (policy_lab.MAX_UPLOAD_BYTES + 1), "at most")):
        with pytest.raises(ResidualsError, match=words) as info:
            policy_lab.uploaded_policy("up.toml", data)
        assert "up.toml" in str(info.value) and "\n" not in str(info.value)
