"""The docstring examples of the public API run, and pass."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from attribution import scorer
from ledger import allocate, money, policy
from residuals import samples

MODULES = [allocate, money, policy, scorer, samples]
"""Modules whose examples are checked: :func:`~ledger.allocate.allocate`,
:func:`~ledger.policy.load_policy`, :func:`~ledger.money.to_minor`,
:class:`~attribution.scorer.KnnScorer`, :func:`~residuals.samples.make_samples`."""


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0
