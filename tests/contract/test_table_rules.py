"""Per-table rules are data (contract.schema.TABLE_RULES), applied by validate_frame."""

from __future__ import annotations

import polars as pl
import pytest

from contract import schema as S
from contract.errors import ContractError
from contract.io import validate_frame


def test_a_declared_rule_applies_to_a_new_table(monkeypatch: pytest.MonkeyPatch) -> None:
    table = S.Table("ledgerlike", required={"id": S.STR, "amount": S.INT}, key=("id",))
    df = pl.DataFrame({"id": ["a", "b"], "amount": [3, -1]})
    validate_frame(df, table, "ledgerlike.parquet")  # no rule declared: accepted
    monkeypatch.setitem(S.TABLE_RULES, "ledgerlike", S.TableRules(non_negative=("amount",)))
    with pytest.raises(ContractError, match="expected an amount >= 0") as err:
        validate_frame(df, table, "ledgerlike.parquet")
    assert "row 1" in str(err.value) and "amount" in str(err.value)


def test_clips_declared_again_without_embeddings_keep_their_segment_rules() -> None:
    meta = S.Table(S.CLIPS.name, required={S.CLIP_ID: S.STR, S.CREATOR_ID: S.STR},
                   optional=S.CLIPS.optional, key=S.CLIPS.key)
    ok = pl.DataFrame({S.CLIP_ID: ["c1", "c1"], S.CREATOR_ID: ["a", "a"],
                       S.SEGMENT_ID: ["s1", "s2"]})
    assert validate_frame(ok, meta, "clips.parquet").height == 2
    twice = ok.with_columns(pl.lit("s1").alias(S.SEGMENT_ID))
    with pytest.raises(ContractError, match="segment 's1' of clip 'c1' appears twice"):
        validate_frame(twice, meta, "clips.parquet")
    mixed = ok.with_columns(pl.Series(S.CREATOR_ID, ["a", "b"]))
    with pytest.raises(ContractError, match="name different creators"):
        validate_frame(mixed, meta, "clips.parquet")
