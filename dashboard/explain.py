"""What My share says in sentences: the policy, a supersede, the way to the minimum payout.

Rule: pure functions (a policy, manifests, amounts and a :class:`ledger.i18n.Tr`
in; translated sentences out), so every sentence is tested without a browser.
Every number in a sentence comes from the policy or manifest of record and is
formatted by :class:`~ledger.i18n.Tr` (money from integer minor units).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.i18n import N_, Tr
from ledger.policy import Policy

COMPONENT_WORDS = {
    "attribution": N_("attribution: how much the period's generated videos resemble your "
                      "clips"),
    "corpus": N_("corpus: how much of the training data is yours"),
    "user_centric": N_("user-centric: each subscriber's money goes to the creators of their "
                       "own generations"),
    "equal": N_("equal: the same for every eligible creator"),
}
"""Each component of :data:`ledger.policy.COMPONENTS` in plain words."""


def _factor(tr: Tr, value: float) -> str:
    return tr.number(value, 2) + "×"


def policy_in_words(policy: Policy, tr: Tr, *, currency: str, pool_minor: int,
                    licences: Iterable[str] | None = None) -> list[str]:
    """The policy of a batch as a creator reads it: components and weights, the
    multipliers that applied to this creator's clips (``licences``: theirs, if known),
    the confidence discount, the cap and floor, and the minimum payout."""
    _ = tr
    rules = policy.rules
    parts = "; ".join(f"{tr.percent(w, 0)} {tr(COMPONENT_WORDS[c])}"
                      for c, w in policy.components.items())
    out = [_("The pool is divided by: {parts}.").format(parts=parts)]
    out.append(_multipliers_sentence(policy, tr, licences))
    if rules.min_confidence is not None:
        out.append(_("Generations whose confidence is below {threshold} count {factor}.")
                   .format(threshold=tr.number(rules.min_confidence, 2),
                           factor=_factor(tr, rules.low_confidence_factor)))
    cap = policy.cap_minor_in(pool_minor)
    if cap is None:
        out.append(_("No creator's payout is capped."))
    else:
        out.append(_("Nobody receives more than {share} of the pool ({amount}).").format(
            share=tr.percent(rules.cap_share or 0.0, 2), amount=tr.money(cap, currency)))
    floor = policy.floor_minor_in(currency, pool_minor)
    if floor:
        out.append(_("Every creator with a share receives at least {amount}.").format(
            amount=tr.money(floor, currency)))
    minimum = policy.min_payout_in(currency)
    if minimum:
        out.append(_("Balances below {amount} are carried forward to the next period.")
                   .format(amount=tr.money(minimum, currency)))
    return out


def _multipliers_sentence(policy: Policy, tr: Tr, licences: Iterable[str] | None) -> str:
    _ = tr
    rules = policy.rules
    if licences is None:
        table = {k: v for k, v in rules.license_multipliers.items() if v != 1.0}
        if not table and rules.license_default == 1.0:
            return _("No licence multiplier applies in this policy.")
        shown = "; ".join(f"{k} {_factor(tr, v)}" for k, v in sorted(table.items()))
        return _("Licence multipliers in this policy: {list}; any other licence {default}.") \
            .format(list=shown or "-", default=_factor(tr, rules.license_default))
    applied = {lic: rules.license_multipliers.get(lic, rules.license_default)
               for lic in sorted(set(licences))}  # one per distinct licence of the creator
    changed = {k: v for k, v in applied.items() if v != 1.0}
    if not changed:
        return _("No licence multiplier changed your clips' credit.")
    return _("Multipliers that applied to your clips: {list}.").format(
        list="; ".join(f"{k} {_factor(tr, v)}" for k, v in changed.items()))


def supersede_changes(old: Mapping[str, Any], new: Mapping[str, Any], tr: Tr) -> list[str]:
    """What differs between a superseded batch's manifest ``old`` and the batch ``new``
    that replaced it: pool, policy, inputs, settings, and the reason if one was recorded."""
    _ = tr
    out: list[str] = []
    cur = str(new.get("currency", ""))
    if old.get("pool_minor") != new.get("pool_minor") and cur:
        out.append(_("The pool changed from {old} to {new}.").format(
            old=tr.money(int(old.get("pool_minor") or 0), cur),
            new=tr.money(int(new.get("pool_minor") or 0), cur)))
    old_policy, new_policy = old.get("policy") or {}, new.get("policy") or {}
    if old_policy.get("hash") != new_policy.get("hash"):
        out.append(_("The policy changed from {old} to {new}.").format(
            old=old_policy.get("name", "?"), new=new_policy.get("name", "?")))
    old_in, new_in = old.get("inputs") or {}, new.get("inputs") or {}
    changed = sorted(k for k in set(old_in) | set(new_in) if old_in.get(k) != new_in.get(k))
    if changed:
        out.append(_("These inputs changed: {names}.").format(names=", ".join(changed)))
    old_p, new_p = old.get("params") or {}, new.get("params") or {}
    settings = sorted(k for k in set(old_p) | set(new_p) if old_p.get(k) != new_p.get(k))
    if settings:
        out.append(_("These attribution settings changed: {names}.").format(
            names=", ".join(settings)))
    reason = (new.get("context") or {}).get("supersede_reason")
    if isinstance(reason, str) and reason.strip():
        out.append(_("Reason given: {reason}.").format(reason=reason.strip()))
    if not out:
        out.append(_("Pool, policy, inputs and settings are the same; the batch was "
                     "recomputed."))
    return out


@dataclass(frozen=True)
class Progress:
    """How far a balance is from the minimum payout."""

    balance_minor: int
    minimum_minor: int

    @property
    def fraction(self) -> float:
        """In [0, 1]; 1 when there is no minimum or it is reached."""
        if self.minimum_minor <= 0:
            return 1.0
        return min(1.0, max(0.0, self.balance_minor / self.minimum_minor))

    def sentence(self, tr: Tr, currency: str) -> str:
        """``3.09 of 10.00 USD`` for the locale."""
        _ = tr
        return _("{balance} of {minimum} {currency}").format(
            balance=tr.amount(self.balance_minor, currency),
            minimum=tr.amount(self.minimum_minor, currency), currency=currency)


def next_payout(policy: Policy, today: dt.date) -> dt.date | None:
    """The next payout date of ``policy``'s ``[schedule]``, or None when it has none."""
    return policy.schedule.next_payout(today) if policy.schedule is not None else None


PAYOUT_STATE_WORDS = {
    "pending": N_("pending: ready to be sent"),
    "submitted": N_("submitted: sent to the payment provider"),
    "held": N_("held"),
    "paid": N_("paid"),
    "failed": N_("failed: the amount is back on your balance"),
    "returned": N_("returned: the amount is back on your balance"),
    "canceled": N_("canceled"),
}
"""Each payout state (:data:`ledger.store.models.PAYOUT_STATES`) as a creator reads it."""

HOLD_WORDS = {
    "no_payout_method": N_("no payout method"),
    "tax_form_missing": N_("tax form missing"),
    "under_dispute": N_("under dispute"),
    "superseded": N_("the batch was recomputed"),
    "profile complete": N_("your payout profile is complete"),
}
"""The reasons a payout event records, in words (an unknown reason is shown as it is)."""

TAX_FORM_WORDS = {
    "missing": N_("missing"),
    "submitted": N_("submitted, waiting for acceptance"),
    "accepted": N_("accepted"),
}


def reasons_in_words(reason: str | None, tr: Tr) -> str:
    """A comma-separated event reason (``no_payout_method,tax_form_missing``) in words."""
    parts = [p for p in (reason or "").split(",") if p]
    return ", ".join(tr(HOLD_WORDS[p]) if p in HOLD_WORDS else p for p in parts)


def payout_status(state: str, reason: str | None, failure_code: str | None, tr: Tr) -> str:
    """One payout's state in words: ``held: no payout method, tax form missing``,
    ``failed: the amount is back on your balance (code: account_closed)``."""
    _ = tr
    words = tr(PAYOUT_STATE_WORDS[state]) if state in PAYOUT_STATE_WORDS else state
    if state == "held":
        why = reasons_in_words(reason, tr)
        return _("held: {reasons}").format(reasons=why) if why else words
    if failure_code:
        return _("{status} (code: {code})").format(status=words, code=failure_code)
    if reason and state == "canceled":
        return _("{status} ({reason})").format(status=words, reason=reasons_in_words(reason, tr))
    return words


def profile_todo(missing: Iterable[str], tax_form: str, country: str | None,
                 tr: Tr) -> list[str]:
    """What a creator must still provide before they can be paid, one sentence each
    (``missing``: :attr:`ledger.store.profiles.Profile.missing`); empty when nothing."""
    _ = tr
    out: list[str] = []
    if "no_payout_method" in missing:
        out.append(_("Add a payout method (where the money goes): without one your payouts "
                     "are held."))
    if "tax_form_missing" in missing:
        out.append(_("Your tax form has been submitted and waits for acceptance; payouts are "
                     "held until it is accepted.") if tax_form == "submitted" else
                   _("Send your tax form: without an accepted tax form your payouts are "
                     "held."))
    if country is None:
        out.append(_("Tell the platform your country."))
    return out
