"""Shared test configuration.

- ``need(reason, ok)``: skip a test when the machine lacks something, but fail
  it when ``RESIDUALS_REQUIRE_ALL=1`` (set by ``.ci/run``), so CI cannot go
  green by skipping.
- Hypothesis profiles: ``ci`` runs 1,000 examples per property (selected by
  ``.ci/run`` through ``HYPOTHESIS_PROFILE=ci``); ``dev`` runs 200.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"

settings.register_profile(
    "ci", max_examples=1000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REQUIRE_ALL = os.environ.get("RESIDUALS_REQUIRE_ALL") == "1"


def need(ok: bool, reason: str) -> None:
    """Skip (locally) or fail (under RESIDUALS_REQUIRE_ALL=1) unless ``ok``."""
    if ok:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required by RESIDUALS_REQUIRE_ALL=1 but missing: {reason}")
    pytest.skip(reason)
