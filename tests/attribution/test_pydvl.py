"""``attribution.knn_shapley`` agrees with pyDVL's ``KNNShapleyValuation`` to 1e-12.

pyDVL pins ``numpy < 2``, which the project's environment does not satisfy, so
this test builds its own virtual environment (``.venv-pydvl/`` in the repository
root, reused when already complete), installs a pinned pyDVL there, runs a small
script that writes pyDVL's values for fixed random data to a file, and compares.
pyDVL ranks neighbours with scikit-learn's ``KNeighborsClassifier.kneighbors``
(Euclidean distance; its tie order is the tree's, not the index), so the data
are continuous random points without ties.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from attribution import knn_shapley
from tests.conftest import ROOT, need

pytestmark = [pytest.mark.pydvl, pytest.mark.timeout(900)]

PYDVL = "pydvl==0.10.0"
REQUIREMENTS = [PYDVL, "numpy>=1.26,<2", "scikit-learn>=1.4,<2"]
VENV = ROOT / ".venv-pydvl"
STAMP = VENV / (".installed-" + PYDVL.replace("==", "-"))

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier
    from pydvl.valuation.dataset import Dataset
    from pydvl.valuation.methods.knn_shapley import KNNShapleyValuation

    data = np.load(sys.argv[1])
    out = {}
    for k in data["ks"]:
        train = Dataset(data["x"], data["y"])
        test = Dataset(data["xt"], data["yt"])
        valuation = KNNShapleyValuation(KNeighborsClassifier(n_neighbors=int(k)), test,
                                        progress=False)
        result = valuation.fit(train).result
        values = np.empty(len(data["y"]))
        values[np.asarray(result.indices)] = result.values
        out[f"k{int(k)}"] = values
    np.savez(sys.argv[2], **out)
""")


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def pydvl_python() -> Path:
    """The interpreter of the pyDVL environment, created and installed on first use."""
    if STAMP.exists() and _venv_python().exists():
        return _venv_python()
    if VENV.exists():
        shutil.rmtree(VENV)  # an unfinished earlier attempt
    made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True,
                          text=True)
    need(made.returncode == 0, f"cannot create a virtualenv: {made.stderr.strip()[-300:]}")
    install = subprocess.run(
        [str(_venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *REQUIREMENTS], capture_output=True, text=True)
    assert install.returncode == 0, f"pip install {PYDVL} failed: {install.stderr[-2000:]}"
    STAMP.touch()
    return _venv_python()


def test_knn_shapley_agrees_with_pydvl(tmp_path: Path) -> None:
    rng = np.random.default_rng(20191)
    x = rng.normal(size=(80, 5))
    y = rng.integers(0, 3, size=80)
    xt = rng.normal(size=(25, 5))
    yt = rng.integers(0, 3, size=25)
    ks = np.array([1, 3, 5, 20, 80])  # pyDVL's base case v_N/N equals ours for K <= N
    data = tmp_path / "data.npz"
    np.savez(data, x=x, y=y, xt=xt, yt=yt, ks=ks)
    script = tmp_path / "pydvl_values.py"
    script.write_text(SCRIPT)
    out = tmp_path / "pydvl_values.npz"
    run = subprocess.run([str(pydvl_python()), str(script), str(data), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    theirs = np.load(out)
    for k in ks:
        ours = knn_shapley(x, y, xt, yt, int(k))
        assert ours.dtype == np.float64
        assert np.abs(ours).max() > 0
        np.testing.assert_allclose(ours, theirs[f"k{k}"], rtol=0, atol=1e-12)
