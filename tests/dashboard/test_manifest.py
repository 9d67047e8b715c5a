"""The public manifest against a plain-Python count of the same catalogue."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import schema as S
from dashboard import manifest as M


def _reference(creators: dict[str, tuple[str, bool]], rows: list[tuple[str, str, float | None, str | None]]):
    """Count clips and hours per named creator and per licence, one row per clip id."""
    seen: dict[str, tuple[str, float, str | None]] = {}
    for clip, creator, dur, lic in rows:
        seen.setdefault(clip, (creator, dur or 0.0, lic))
    per_creator: dict[str, list[float]] = {}
    per_license: dict[str, list[float]] = {}
    hidden = [0, 0.0, set()]
    for creator, dur, lic in seen.values():
        name, out = creators[creator]
        if out:
            hidden[0] += 1
            hidden[1] += dur / 3600
            hidden[2].add(creator)
        else:
            acc = per_creator.setdefault(creator, [0, 0.0])
            acc[0] += 1
            acc[1] += dur / 3600
        acc = per_license.setdefault(lic or M.NO_LICENSE_LABEL, [0, 0.0])
        acc[0] += 1
        acc[1] += dur / 3600
    return per_creator, per_license, hidden


@st.composite
def catalogues(draw):
    n_creators = draw(st.integers(1, 6))
    ids = [f"c{i}" for i in range(n_creators)]
    creators = {c: (f"Name {c}", draw(st.booleans())) for c in ids}
    n_clips = draw(st.integers(1, 15))
    rows = []
    for j in range(n_clips):
        creator = draw(st.sampled_from(ids))
        dur = draw(st.one_of(st.none(), st.floats(0, 7200, allow_nan=False)))
        lic = draw(st.one_of(st.none(), st.sampled_from(["CC-BY", "editorial", "licensed"])))
        for k in range(draw(st.integers(1, 3))):  # segments repeat the clip's row
            rows.append((f"clip{j}", creator, dur, lic))
    return creators, rows


def _frames(creators, rows):
    cr = pl.DataFrame({
        S.CREATOR_ID: list(creators),
        S.DISPLAY_NAME: [v[0] for v in creators.values()],
        S.OPTED_OUT: [v[1] for v in creators.values()],
    })
    cl = pl.DataFrame(
        {S.CLIP_ID: [r[0] for r in rows], S.CREATOR_ID: [r[1] for r in rows],
         S.DURATION_S: [r[2] for r in rows], S.LICENSE: [r[3] for r in rows]},
        schema={S.CLIP_ID: pl.String, S.CREATOR_ID: pl.String, S.DURATION_S: pl.Float64,
                S.LICENSE: pl.String},
    )
    return cr, cl


@given(catalogues())
def test_manifest_matches_plain_count(cat):
    creators, rows = cat
    per_creator, per_license, hidden = _reference(creators, rows)
    m = M.build_manifest(*_frames(creators, rows))

    named = m.by_creator.filter(pl.col(S.CREATOR_ID).is_not_null())
    got = {r[S.CREATOR_ID]: (r[M.CLIPS], r[M.HOURS]) for r in named.iter_rows(named=True)}
    assert got.keys() == per_creator.keys()
    for key, (clips, hours) in per_creator.items():
        assert got[key][0] == clips and got[key][1] == pytest.approx(hours)
    lic = {r[S.LICENSE]: (r[M.CLIPS], r[M.HOURS]) for r in m.by_license.iter_rows(named=True)}
    assert lic.keys() == per_license.keys()
    for key, (clips, hours) in per_license.items():
        assert lic[key][0] == clips and lic[key][1] == pytest.approx(hours)
    out = m.opted_out.row(0, named=True)
    assert out[M.CLIPS] == hidden[0] and out[M.CREATORS] == len(hidden[2])
    assert out[M.HOURS] == pytest.approx(hidden[1])
    assert m.clips == len({r[0] for r in rows})
    assert m.named_creators == len(per_creator)


@given(catalogues())
def test_opted_out_creators_are_never_named(cat):
    creators, rows = cat
    m = M.build_manifest(*_frames(creators, rows))
    hidden_ids = {c for c, (_, out) in creators.items() if out}
    hidden_names = {creators[c][0] for c in hidden_ids}
    assert not hidden_ids & set(m.by_creator[S.CREATOR_ID].drop_nulls())
    assert not hidden_names & set(m.by_creator[S.DISPLAY_NAME])
    anon = m.by_creator.filter(pl.col(S.CREATOR_ID).is_null())
    hidden_clips = _reference(creators, rows)[2][0]
    assert anon.height == (1 if hidden_clips else 0)
    assert anon[M.CLIPS].sum() == hidden_clips


def test_without_optional_columns():
    cr = pl.DataFrame({S.CREATOR_ID: ["a"], S.DISPLAY_NAME: ["A"], S.OPTED_OUT: [False]})
    cl = pl.DataFrame({S.CLIP_ID: ["x", "y"], S.CREATOR_ID: ["a", "a"]})
    m = M.build_manifest(cr, cl)
    assert m.hours is None and m.by_license is None
    assert m.by_creator[M.CLIPS].to_list() == [2]
    assert m.opted_out[M.CLIPS].to_list() == [0]
