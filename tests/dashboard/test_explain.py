"""My share's sentences: the policy in words, a supersede, the way to the minimum payout."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard import explain
from ledger.i18n import Tr
from ledger.policy import load_policy, parse_policy
from tests.conftest import ROOT

EN, ES = Tr("en"), Tr("es")
POLICIES = ROOT / "policies"


def test_default_policy_in_words_names_weights_multipliers_and_minimum() -> None:
    policy = load_policy(POLICIES / "default.toml")
    words = explain.policy_in_words(policy, EN, currency="USD", pool_minor=1_000_000,
                                    licences=["exclusive", "platform-standard"])
    assert words[0].startswith("The pool is divided by: 70% attribution: ")
    assert "; 30% corpus: " in words[0]
    assert "Multipliers that applied to your clips: exclusive 1.50×." in words
    assert "No creator's payout is capped." in words
    assert "Balances below $10.00 are carried forward to the next period." in words
    plain = explain.policy_in_words(policy, EN, currency="USD", pool_minor=1_000_000,
                                    licences=["CC-BY-4.0"])
    assert "No licence multiplier changed your clips' credit." in plain
    unknown = explain.policy_in_words(policy, EN, currency="USD", pool_minor=1_000_000)
    assert ("Licence multipliers in this policy: exclusive 1.50×; any other licence 1.00×."
            in unknown)


def test_cap_floor_and_confidence_rule_in_spanish() -> None:
    policy = parse_policy(
        '[pool]\ncurrency = "EUR"\n[components]\nattribution = 0.5\nequal = 0.5\n'
        '[rules]\ncap_share = 0.05\nfloor = "1.00"\nmin_confidence = 0.5\n'
        'low_confidence_factor = 0.25\n')
    words = explain.policy_in_words(policy, ES, currency="EUR", pool_minor=2_500_000)
    assert words[0].startswith("El fondo se reparte así: 50\xa0% atribución: ")
    assert "Nadie recibe más del 5,00\xa0% del fondo (1.250,00\xa0€)." in words
    assert "Cada creador con una parte recibe al menos 1,00\xa0€." in words
    assert "Las generaciones con una confianza inferior a 0,50 cuentan 0,25×." in words
    assert not any("trasladan" in w for w in words)  # no minimum payout in this policy


def manifest(**changes):  # type: ignore[no-untyped-def]
    base = {"currency": "USD", "pool_minor": 100_000,
            "policy": {"name": "default", "hash": "p1"},
            "inputs": {"clips.parquet": "a", "attributions.parquet": "b"},
            "params": {"k": 10}, "context": {}}
    return {**base, **changes}


def test_supersede_changes_say_what_changed() -> None:
    old = manifest()
    new = manifest(pool_minor=120_000, policy={"name": "hybrid-70-30", "hash": "p2"},
                   inputs={"clips.parquet": "a", "attributions.parquet": "c"},
                   params={"k": 15}, context={"supersede_reason": "late revenue report"})
    assert explain.supersede_changes(old, new, EN) == [
        "The pool changed from $1,000.00 to $1,200.00.",
        "The policy changed from default to hybrid-70-30.",
        "These inputs changed: attributions.parquet.",
        "These attribution settings changed: k.",
        "Reason given: late revenue report.",
    ]
    assert explain.supersede_changes(old, manifest(), ES) == [
        "El fondo, la política, los datos de entrada y los ajustes son los mismos; el lote "
        "se volvió a calcular."]


@pytest.mark.parametrize(("balance", "minimum", "fraction", "en", "es"), [
    (309, 1000, 0.309, "3.09 of 10.00 USD", "3,09 de 10,00 USD"),
    (1500, 1000, 1.0, "15.00 of 10.00 USD", "15,00 de 10,00 USD"),
    (0, 0, 1.0, "0.00 of 0.00 USD", "0,00 de 0,00 USD"),
])
def test_progress_to_the_minimum_payout(balance: int, minimum: int, fraction: float,
                                        en: str, es: str) -> None:
    progress = explain.Progress(balance, minimum)
    assert progress.fraction == pytest.approx(fraction)
    assert progress.sentence(EN, "USD") == en and progress.sentence(ES, "USD") == es


def test_next_payout_from_the_schedule() -> None:
    policy = load_policy(POLICIES / "default.toml")
    assert explain.next_payout(policy, dt.date(2026, 12, 20)) == dt.date(2027, 1, 15)
    assert explain.next_payout(parse_policy("[components]\nequal = 1"), dt.date(2026, 1, 1)
                               ) is None


@pytest.mark.parametrize(("state", "reason", "code", "en", "es"), [
    ("held", "no_payout_method,tax_form_missing", None,
     "held: no payout method, tax form missing",
     "retenido: sin método de pago, falta el formulario fiscal"),
    ("held", "under_dispute", None, "held: under dispute", "retenido: en disputa"),
    ("failed", None, "account_closed",
     "failed: the amount is back on your balance (code: account_closed)",
     "fallido: el importe ha vuelto a tu saldo (código: account_closed)"),
    ("paid", None, None, "paid", "pagado"),
    ("submitted", None, None, "submitted: sent to the payment provider",
     "enviado: remitido al proveedor de pagos"),
    ("canceled", "superseded", None, "canceled (the batch was recomputed)",
     "cancelado (el lote se recalculó)"),
    ("held", "a_new_reason", None, "held: a_new_reason", "retenido: a_new_reason"),
])
def test_payout_status_in_words(state, reason, code, en, es) -> None:  # type: ignore[no-untyped-def]
    assert explain.payout_status(state, reason, code, EN) == en
    assert explain.payout_status(state, reason, code, ES) == es


def test_every_payout_state_and_hold_reason_has_words() -> None:
    from ledger.store import models as M

    assert set(explain.PAYOUT_STATE_WORDS) == set(M.PAYOUT_STATES)
    assert set(M.HOLD_REASONS) | {M.SUPERSEDED} <= set(explain.HOLD_WORDS)
    assert set(explain.TAX_FORM_WORDS) == set(M.TAX_FORM_STATES)


def test_profile_todo_names_what_is_missing() -> None:
    todo = explain.profile_todo(["no_payout_method", "tax_form_missing"], "missing", None, EN)
    assert [t.split(" ")[0] for t in todo] == ["Add", "Send", "Tell"]
    waiting = explain.profile_todo(["tax_form_missing"], "submitted", "ES", EN)
    assert len(waiting) == 1 and "waits for acceptance" in waiting[0]
    assert explain.profile_todo([], "accepted", "US", EN) == []
