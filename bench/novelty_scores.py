"""Novelty scores of novel and sourced generations, per family and depth (a diagnostic).

Rule: a novelty rule is a score per generation and a threshold; it works on a
family when the scores of novel generations (no planted source) and sourced
ones separate. For every family of :mod:`residuals.families` (tuning seed
unless ``--held-out``) and every depth, this prints the quantiles of each
score for novel and sourced generations, the AUC (probability that a random
novel generation scores above a random sourced one), and then, for each
score, the threshold that minimises the worst ``misrouted`` share over the
synthetic families while keeping every family's false-novel rate <= 5%.

Scores (``r_s``: what the nnls fit over the ``D`` candidates leaves of the
unit generation):

- ``concepts``: ``r_s / r_c``, ``r_c`` the residual of the nearest of 64
  k-means centroids (the current rule, :mod:`attribution.novelty`);
- ``loo``: ``r_s / r_1``, ``r_1`` what the nnls fit of the best candidate
  ``c_1`` over the other candidates leaves: how well the catalogue explains
  one of its own clips in the same neighbourhood (a local null);
- ``loo-dedup``: the same with the candidates closer than 0.97 to ``c_1``
  left out of its fit (its own near-copies).

Usage::

    python bench/novelty_scores.py [--families a,b] [--depths 16,32] [--held-out]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from attribution.nnls import nnls_gram  # noqa: E402
from attribution.novelty import fit_centroids, generic_residual  # noqa: E402
from attribution_quality import FALSE_NOVEL_MAX, load  # noqa: E402
from contract import schema as S  # noqa: E402
from contract.io import embedding_matrix  # noqa: E402
from residuals.families import FAMILIES, make_family  # noqa: E402

DUP = 0.97
#: Catalogue clips scored against the rest of the catalogue (the null).
NULL_CLIPS = 500
QUANTILES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def residuals(clips: np.ndarray, gens: np.ndarray, depth: int, step: int = 256,
              self_rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """{name: (n,) float64}: r_s, r_1 and r_1 without near-copies, per generation.

    ``self_rows``: for catalogue clips scored as generations, the clip row of
    each, left out of its own candidates.
    """
    out = {k: np.empty(len(gens)) for k in ("r_s", "r_1", "r_1d")}
    for lo in range(0, len(gens), step):
        g = gens[lo:lo + step]
        sim = g @ clips.T
        if self_rows is not None:
            sim[np.arange(len(g)), self_rows[lo:lo + step]] = -np.inf
        top = np.argsort(-sim, axis=1, kind="stable")[:, :depth]
        c = clips[top]
        gram = np.matmul(c, np.swapaxes(c, 1, 2))
        rhs = np.einsum("nkd,nd->nk", c, g)
        x = nnls_gram(gram, rhs)
        out["r_s"][lo:lo + step] = 1 - (2 * (rhs * x).sum(1) - np.einsum("ni,nij,nj->n", x, gram, x))
        for name, mask in (("r_1", np.ones(gram.shape[:2], bool)),
                           ("r_1d", gram[:, 0, :] < DUP)):
            mask = mask.copy()
            mask[:, 0] = False
            b = gram[:, 0, :]
            y = nnls_gram(gram, b, mask)
            out[name][lo:lo + step] = 1 - (2 * (b * y).sum(1) - np.einsum("ni,nij,nj->n", y, gram, y))
    return out


def auc(novel: np.ndarray, sourced: np.ndarray) -> float:
    """P(score of a novel > score of a sourced), ties half."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([novel, sourced]))  # ties: average rank
    rn = ranks[: len(novel)].sum()
    return float((rn - len(novel) * (len(novel) + 1) / 2) / (len(novel) * len(sourced)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--depths", default="16,32,64,128,256")
    ap.add_argument("--held-out", action="store_true")
    args = ap.parse_args(argv)
    names = [n for n in args.families.split(",") if n]
    depths = [int(d) for d in args.depths.split(",")]
    scores: dict[tuple[str, int], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    nulls: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            fam = FAMILIES[name]
            seed = fam.held_out_seed if args.held_out else fam.tune_seed
            make_family(Path(tmp) / name, name, seed)
            p = load(Path(tmp) / name)
            clips = _unit(embedding_matrix(p.clips, "clips", S.CLIPS).astype(np.float64))
            gens = _unit(embedding_matrix(p.gens, "generations", S.GENERATIONS).astype(np.float64))
            stride = max(1, -(-len(clips) // 16384))
            r_c = generic_residual(gens, fit_centroids(clips[::stride].astype(np.float32)))
            is_novel = np.zeros(len(gens), bool)
            is_novel[p.novel] = True
            null_rows = np.arange(0, len(clips), max(1, len(clips) // NULL_CLIPS))[:NULL_CLIPS]
            null_c = generic_residual(clips[null_rows], fit_centroids(
                clips[::stride].astype(np.float32)))
            for d in depths:
                r = residuals(clips, gens, d)
                per = {"concepts": r["r_s"] / r_c, "loo": r["r_s"] / np.maximum(r["r_1"], 1e-12),
                       "loo-dedup": r["r_s"] / np.maximum(r["r_1d"], 1e-12), "r_s": r["r_s"]}
                scores[(name, d)] = {k: (v[is_novel], v[~is_novel]) for k, v in per.items()}
                nr = residuals(clips, clips[null_rows], d, self_rows=null_rows)["r_s"]
                nulls[(name, d)] = {"r_s": nr, "concepts": nr / null_c}
                print(f"\n{name} D={d} (novel {is_novel.sum()}, sourced {(~is_novel).sum()})")
                for k, (nv, sv) in scores[(name, d)].items():
                    qn = np.quantile(nv, [0.05, 0.5, 0.95]) if len(nv) else [np.nan] * 3
                    qs = np.quantile(sv, [0.05, 0.5, 0.95, 0.99])
                    a = auc(nv, sv) if len(nv) else float("nan")
                    print(f"  {k:<10} novel q05/50/95 {qn[0]:.3f} {qn[1]:.3f} {qn[2]:.3f} | "
                          f"sourced q05/50/95/99 {qs[0]:.3f} {qs[1]:.3f} {qs[2]:.3f} {qs[3]:.3f}"
                          f" | AUC {a:.3f}", flush=True)
    synth = [n for n in names if n != "real"]
    print("\nbest threshold per score and depth (synthetic worst case; false-novel <= "
          f"{FALSE_NOVEL_MAX} on every family):")
    for d in depths:
        for k in ("concepts", "loo", "loo-dedup"):
            best = None
            for t in np.round(np.arange(0.05, 3.0001, 0.025), 3):
                rows = []
                for n in names:
                    nv, sv = scores[(n, d)][k]
                    credit = float((nv <= t).mean()) if len(nv) else 0.0
                    fn = float((sv > t).mean())
                    rows.append((n, credit, fn, (credit * len(nv) + fn * len(sv)) / (len(nv) + len(sv))))
                syn = [r for r in rows if r[0] in synth]
                if max(r[2] for r in syn) > FALSE_NOVEL_MAX:
                    continue
                wm = max(r[3] for r in syn)
                if best is None or wm < best[0] - 1e-12:
                    best = (wm, t, rows)
            if best is None:
                print(f"  D={d} {k}: no threshold keeps false-novel <= {FALSE_NOVEL_MAX}")
                continue
            wm, t, rows = best
            cells = ", ".join(f"{n} credit {c:.2f} fn {f:.3f}" for n, c, f, _ in rows)
            print(f"  D={d} {k}: t={t} worst misrouted {wm:.3f} ({cells})")
    print("\nnull quantile rules: novel when the score exceeds the q-quantile of the scores of "
          f"{NULL_CLIPS} catalogue clips against the rest of the catalogue:")
    for d in depths:
        for k in ("r_s", "concepts"):
            for q in QUANTILES:
                rows = []
                for n in names:
                    nv, sv = scores[(n, d)][k]
                    t = float(np.quantile(nulls[(n, d)][k], q))
                    credit = float((nv <= t).mean()) if len(nv) else 0.0
                    fn = float((sv > t).mean())
                    rows.append((n, credit, fn, (credit * len(nv) + fn * len(sv)) / (len(nv) + len(sv))))
                syn = [r for r in rows if r[0] in synth]
                cells = ", ".join(f"{n} {c:.2f}/{f:.3f}" for n, c, f, _ in rows)
                print(f"  D={d} {k} q={q}: worst misrouted {max(r[3] for r in syn):.3f}, worst fn "
                      f"{max(r[2] for r in syn):.3f}, worst credit {max(r[1] for r in syn):.2f} "
                      f"(credit/fn: {cells})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
