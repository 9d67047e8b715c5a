"""Families of synthetic (and one real) contract datasets with planted truth.

Rule: a family is a name, a frozen parameter set and a function of
``(params, seed)`` that plants a catalogue, its generations and the truth
(which clips each sourced generation was made from, with weights summing to
1; novel generations have no truth rows). Every family writes the same
tables as :func:`residuals.samples.make_samples` (``creators``, ``clips``,
``generations``, ``accounts``, ``truth``, ``duplicates``), atomically, and the
same seed gives byte-identical files. Each family builds its geometry
differently, so an attribution default must hold on all of them:

- ``linear``: :mod:`residuals.samples`, unchanged (``data/samples``);
- ``topics``: creator styles and topics, Zipf-sized creators; novel generations
  are new clips of a topic (inside dense regions), sourced ones mix 1-4 clips;
- ``nonlinear``: generations are transformed copies (a fixed random non-linear
  map, masked dimensions, noise larger than the distance between neighbours);
- ``duplicates``: uploaders who post many near-copies of their own clips;
- ``anisotropic``: every embedding shares a strong common direction and a
  decaying spectrum, so all cosines are high;
- ``real``: crops of the photographs bundled in the scikit-image wheel,
  embedded by a PCA of pixels, generations made by realistic edits.

The parameters of each family were frozen before any attribution default was
tuned on them. ``real`` goes through scikit-image's resize and a PCA (LAPACK):
same bytes on one machine and library set, not promised across BLAS builds. Nothing loops over rows; loops run over a handful of images or
source slots.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from contract import schema as S
from contract.errors import ResidualsError
from residuals import samples as base
from residuals.samples import _ids, _ids_at, _normalize, _rng, _schema, _to_arrow, _width, _write

# Random streams of the families (disjoint from each other's meaning, not from samples.py's).
_CATALOGUE, _GENERATION, _META = range(3)
_ROW_GROUP = 100_000


@dataclass(frozen=True)
class Planted:
    """A family's output before it is written: embeddings, owners and the truth (row numbers)."""

    clip_emb: np.ndarray  # float32 (n, d), unit rows
    clip_creator: np.ndarray  # int (n,) creator number of each clip
    n_creators: int
    gen_emb: np.ndarray  # float32 (m, d), unit rows
    truth_gen: np.ndarray  # int (t,) generation row of each planted source
    truth_clip: np.ndarray  # int (t,) clip row of each planted source
    truth_weight: np.ndarray  # float64 (t,), summing to 1 per sourced generation
    dup_copy: np.ndarray  # int (p,) clip row of each near-copy ...
    dup_orig: np.ndarray  # int (p,) ... and of the clip it copies


# ---- shared geometry ---------------------------------------------------------------------------

def _gaussian_units(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return _normalize(rng.standard_normal((n, dim), np.float32))


def _noise(rng: np.random.Generator, n: int, dim: int, scale: float) -> np.ndarray:
    """Gaussian noise of expected norm ``scale`` per row."""
    return rng.standard_normal((n, dim), np.float32) * np.float32(scale / np.sqrt(dim))


def _zipf_sizes(rng: np.random.Generator, creators: int, clips: int, exponent: float) -> np.ndarray:
    """Catalogue sizes proportional to rank**-exponent (shuffled), every creator >= 1 clip."""
    pull = np.arange(1, creators + 1, dtype=np.float64) ** -exponent
    return 1 + rng.multinomial(clips - creators, rng.permutation(pull / pull.sum()))


def _mixtures(rng: np.random.Generator, n: int, pool: np.ndarray, sources_p: tuple[float, ...],
              alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` generations' sources: (src (n, S) clip rows, w (n, S) weights, used (n, S)).

    Each generation has 1..S distinct sources drawn uniformly from ``pool``,
    with Dirichlet(alpha) weights, strongest first.
    """
    slots = len(sources_p)
    k = 1 + rng.choice(slots, n, p=list(sources_p))
    src = _distinct(rng, pool, n, slots)
    used = np.arange(slots)[None, :] < k[:, None]
    w = rng.gamma(alpha, size=(n, slots)) * used
    w /= w.sum(axis=1, keepdims=True)
    order = np.argsort(-w, axis=1, kind="stable")
    return (np.take_along_axis(src, order, axis=1), np.take_along_axis(w, order, axis=1),
            np.take_along_axis(used, order, axis=1))


def _distinct(rng: np.random.Generator, pool: np.ndarray, n: int, slots: int) -> np.ndarray:
    """(n, slots) draws from ``pool``, distinct within a row (redrawn until they are)."""
    src = pool[rng.integers(0, len(pool), (n, slots))]
    for _ in range(100):  # a few rounds: collisions are rare when pool >> slots
        srt = np.sort(src, axis=1)
        bad = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if not bad.any():
            return src
        src[bad] = pool[rng.integers(0, len(pool), (int(bad.sum()), slots))]
    raise ResidualsError("could not draw distinct sources: the catalogue is too small")


def _truth_rows(gen_rows: np.ndarray, src: np.ndarray, w: np.ndarray,
                used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.repeat(gen_rows, src.shape[1]).reshape(src.shape)
    return g[used], src[used], w[used].astype(np.float64)


def _topic_catalogue(rng: np.random.Generator, p: Any):
    """Topic + style + noise clips of a params object with the topic fields.

    Returns (emb, creator, topic, topic vectors, style vectors).
    """
    creators, clips, dim, topics = p.creators, p.clips, p.dim, p.topics
    exponent, favourite_p = p.zipf_exponent, p.favourite_topic_p
    scales = (p.topic_scale, p.style_scale, p.clip_noise)
    topic_vec = _gaussian_units(rng, topics, dim)
    style_vec = _gaussian_units(rng, creators, dim)
    favourite = rng.integers(0, topics, creators)
    sizes = _zipf_sizes(rng, creators, clips, exponent)
    creator = np.repeat(np.arange(creators), sizes)
    topic = np.where(rng.random(clips) < favourite_p, favourite[creator],
                     rng.integers(0, topics, clips))
    a, b, c = scales
    emb = _normalize(a * topic_vec[topic] + b * style_vec[creator] + _noise(rng, clips, dim, c))
    return emb, creator, topic, topic_vec, style_vec


def _split(g: np.random.Generator, n: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(novel mask, sourced rows): round(n * share) generations drawn novel."""
    novel = np.zeros(n, dtype=bool)
    novel[g.permutation(n)[:int(round(n * share))]] = True
    return novel, np.flatnonzero(~novel)


def _fresh(g: np.random.Generator, p: Any, tvec: np.ndarray, svec: np.ndarray,
           n: int) -> np.ndarray:
    """``n`` new clip-like vectors (not unit): a random topic, a random creator's style, noise."""
    return (p.topic_scale * tvec[g.integers(0, p.topics, n)]
            + p.style_scale * svec[g.integers(0, p.creators, n)]
            + _noise(g, n, p.dim, p.clip_noise))


def _noisy_mix(g: np.random.Generator, emb: np.ndarray, src: np.ndarray, w: np.ndarray,
               noise: float) -> np.ndarray:
    """normalize(normalize(sum_j w_j emb[src_j]) + noise of norm ``noise``) per row."""
    mix = np.einsum("gs,gsd->gd", w.astype(np.float32), emb[src])
    return _normalize(_normalize(mix) + _noise(g, len(src), emb.shape[1], noise))


# ---- the families ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TopicsParams:
    """Creator styles and topics; novel generations are new clips of a topic."""

    creators: int = 400
    clips: int = 5000
    generations: int = 2000
    dim: int = 96
    topics: int = 24
    zipf_exponent: float = 1.1
    favourite_topic_p: float = 0.8
    topic_scale: float = 0.6
    style_scale: float = 0.35
    clip_noise: float = 0.7
    gen_noise: float = 0.3
    novel_share: float = 0.2
    sources_p: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    dirichlet_alpha: float = 2.0
    same_topic_p: float = 0.7  # a further source shares the first source's topic


def topics(p: TopicsParams, seed: int) -> Planted:
    rng = _rng(seed, _CATALOGUE)
    emb, creator, topic, tvec, svec = _topic_catalogue(rng, p)
    g = _rng(seed, _GENERATION)
    novel, sourced = _split(g, p.generations, p.novel_share)
    src, w, used = _mixtures(g, len(sourced), np.arange(p.clips), p.sources_p, p.dirichlet_alpha)
    # further sources: with probability same_topic_p, a clip of the first source's topic
    by_topic = np.argsort(topic, kind="stable")
    start = np.searchsorted(topic[by_topic], np.arange(p.topics))
    count = np.bincount(topic, minlength=p.topics)
    t0 = topic[src[:, 0]]
    pick = by_topic[start[t0][:, None] + (g.random(src.shape) * count[t0][:, None]).astype(int)]
    same = (g.random(src.shape) < p.same_topic_p) & (np.arange(src.shape[1]) > 0)
    src = np.where(same, pick, src)
    gen = np.empty((p.generations, p.dim), np.float32)
    gen[sourced] = _noisy_mix(g, emb, src, w, p.gen_noise)
    # novel: a fresh clip of a topic, in the style of a creator who works in it
    nt = g.integers(0, p.topics, int(novel.sum()))
    ns = creator[by_topic[start[nt] + (g.random(len(nt)) * count[nt]).astype(int)]]
    gen[novel] = _normalize(p.topic_scale * tvec[nt] + p.style_scale * svec[ns]
                            + _noise(g, len(nt), p.dim, p.clip_noise))
    tg, tc, tw = _truth_rows(sourced, src, *_merge_repeats(src, w, used))
    none = np.zeros(0, dtype=np.int64)
    return Planted(emb, creator, p.creators, gen, tg, tc, tw, none, none)


def _merge_repeats(src: np.ndarray, w: np.ndarray,
                   used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(w, used) where a slot repeating an earlier used slot's clip gives it its weight.

    The mixture is unchanged (the clip was mixed in twice); the truth then lists
    the clip once with its whole weight.
    """
    w, used = w.copy(), used.copy()
    for j in range(1, src.shape[1]):  # slots, not rows
        same = (src[:, :j] == src[:, j:j + 1]) & used[:, :j] & used[:, j:j + 1]
        rows = np.flatnonzero(same.any(axis=1))
        first = same[rows].argmax(axis=1)
        w[rows, first] += w[rows, j]
        w[rows, j], used[rows, j] = 0.0, False
    return w, used


@dataclass(frozen=True)
class NonlinearParams:
    """Generations are transformed copies of 1-3 sources."""

    creators: int = 300
    clips: int = 4000
    generations: int = 1500
    dim: int = 64
    topics: int = 20
    zipf_exponent: float = 0.8
    favourite_topic_p: float = 0.7
    topic_scale: float = 0.3
    style_scale: float = 0.8
    clip_noise: float = 0.5
    novel_share: float = 0.15
    sources_p: tuple[float, ...] = (0.5, 0.3, 0.2)
    dirichlet_alpha: float = 5.0
    warp: float = 0.5  # norm of the fixed non-linear map's part (about)
    warp_gain: float = 2.0
    mask_share: float = 0.25  # dimensions zeroed per generation
    noise_over_nn: float = 1.2  # noise norm / median distance from a clip to its nearest clip


def nonlinear(p: NonlinearParams, seed: int) -> Planted:
    rng = _rng(seed, _CATALOGUE)
    emb, creator, _, tvec, svec = _topic_catalogue(rng, p)
    rot = np.linalg.qr(rng.standard_normal((p.dim, p.dim)))[0].astype(np.float32)
    g = _rng(seed, _GENERATION)
    novel, sourced = _split(g, p.generations, p.novel_share)
    src, w, used = _mixtures(g, len(sourced), np.arange(p.clips), p.sources_p, p.dirichlet_alpha)
    content = np.empty((p.generations, p.dim), np.float32)
    content[sourced] = np.einsum("gs,gsd->gd", w.astype(np.float32), emb[src])
    content[novel] = _fresh(g, p, tvec, svec, int(novel.sum()))
    # every generation, sourced or novel, passes through the same transform
    x = _normalize(content)
    root = np.float32(np.sqrt(p.dim))  # tanh saturates: a non-linear, not a rotated, copy
    warped = _normalize(x + p.warp * np.tanh(p.warp_gain * root * (x @ rot)) / root)
    keep = g.random((p.generations, p.dim)) >= p.mask_share
    noise = _noise(g, p.generations, p.dim, p.noise_over_nn * _median_nn_distance(emb))
    gen = _normalize(warped * keep + noise)
    tg, tc, tw = _truth_rows(sourced, src, w, used)
    none = np.zeros(0, dtype=np.int64)
    return Planted(emb, creator, p.creators, gen, tg, tc, tw, none, none)


def _median_nn_distance(emb: np.ndarray, sample: int = 1000) -> float:
    """Median Euclidean distance from the first ``sample`` clips to their nearest other clip."""
    s = emb[:sample].astype(np.float64)
    cos = s @ emb.astype(np.float64).T
    cos[np.arange(len(s)), np.arange(len(s))] = -np.inf
    return float(np.median(np.sqrt(np.maximum(2 - 2 * cos.max(axis=1), 0))))


@dataclass(frozen=True)
class DuplicatesParams:
    """Some creators upload many near-copies of their own clips."""

    creators: int = 250
    clips: int = 5000
    generations: int = 2000
    dim: int = 64
    topics: int = 20
    zipf_exponent: float = 0.8
    favourite_topic_p: float = 0.7
    topic_scale: float = 0.4
    style_scale: float = 0.4
    clip_noise: float = 1.0
    duplicator_share: float = 0.12
    copy_share: float = 0.7  # of a duplicator's clips, this share are near-copies
    copy_noise: tuple[float, float] = (0.05, 0.3)  # copy = original + noise of norm in this range
    gen_noise: float = 0.2
    novel_share: float = 0.15
    sources_p: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    dirichlet_alpha: float = 5.0


def duplicates(p: DuplicatesParams, seed: int) -> Planted:
    rng = _rng(seed, _CATALOGUE)
    emb, creator, _, tvec, svec = _topic_catalogue(rng, p)
    sizes = np.bincount(creator, minlength=p.creators)
    eligible = rng.permutation(np.flatnonzero(sizes >= 3))
    dupers = np.zeros(p.creators, dtype=bool)
    dupers[eligible[:max(1, int(round(p.creators * p.duplicator_share)))]] = True
    # within a duplicator's catalogue the first clips are originals, the rest copies of them
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(p.clips) - starts[creator]
    n_orig = np.maximum(1, np.round(sizes * (1 - p.copy_share)).astype(int))
    is_copy = dupers[creator] & (pos >= n_orig[creator])
    copy_rows = np.flatnonzero(is_copy)
    orig_rows = starts[creator[copy_rows]] + rng.integers(0, n_orig[creator[copy_rows]])
    lo, hi = p.copy_noise
    scale = rng.uniform(lo, hi, len(copy_rows)).astype(np.float32)[:, None]
    emb[copy_rows] = _normalize(emb[orig_rows]
                                + scale * _noise(rng, len(copy_rows), p.dim, 1.0))
    g = _rng(seed, _GENERATION)
    novel, sourced = _split(g, p.generations, p.novel_share)
    src, w, used = _mixtures(g, len(sourced), np.flatnonzero(~is_copy), p.sources_p,
                             p.dirichlet_alpha)
    gen = np.empty((p.generations, p.dim), np.float32)
    gen[sourced] = _noisy_mix(g, emb, src, w, p.gen_noise)
    gen[novel] = _normalize(_fresh(g, p, tvec, svec, int(novel.sum())))
    tg, tc, tw = _truth_rows(sourced, src, w, used)
    return Planted(emb, creator, p.creators, gen, tg, tc, tw, copy_rows, orig_rows)


@dataclass(frozen=True)
class AnisotropicParams:
    """Linear mixtures seen through an encoder with a common direction and a decaying spectrum."""

    creators: int = 300
    clips: int = 5000
    generations: int = 2000
    dim: int = 128
    topics: int = 24
    zipf_exponent: float = 0.8
    favourite_topic_p: float = 0.7
    topic_scale: float = 0.4
    style_scale: float = 0.4
    clip_noise: float = 1.0
    common: float = 2.0  # weight of the shared direction (mean cosine ~ 0.8)
    spectrum: float = 0.5  # axis i of the rest is scaled by (i + 1) ** -spectrum
    gen_noise: float = 0.15
    novel_share: float = 0.15
    sources_p: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    dirichlet_alpha: float = 10.0


def anisotropic(p: AnisotropicParams, seed: int) -> Planted:
    rng = _rng(seed, _CATALOGUE)
    raw, creator, _, tvec, svec = _topic_catalogue(rng, p)
    common = _gaussian_units(rng, 1, p.dim)[0]
    basis = np.linalg.qr(rng.standard_normal((p.dim, p.dim)))[0].astype(np.float32)
    decay = (np.arange(1, p.dim + 1, dtype=np.float32) ** -p.spectrum)

    def encode(x: np.ndarray) -> np.ndarray:
        spread = _normalize((x @ basis) * decay) @ basis.T
        return _normalize(p.common * common + spread)

    g = _rng(seed, _GENERATION)
    novel, sourced = _split(g, p.generations, p.novel_share)
    src, w, used = _mixtures(g, len(sourced), np.arange(p.clips), p.sources_p, p.dirichlet_alpha)
    gen = np.empty((p.generations, p.dim), np.float32)
    gen[sourced] = _noisy_mix(g, raw, src, w, p.gen_noise)
    gen[novel] = _normalize(_fresh(g, p, tvec, svec, int(novel.sum())))
    tg, tc, tw = _truth_rows(sourced, src, w, used)
    none = np.zeros(0, dtype=np.int64)
    return Planted(encode(raw), creator, p.creators, encode(gen), tg, tc, tw, none, none)


#: Photographs inside the scikit-image wheel (its ``data`` directory; no download).
BUNDLED_IMAGES: tuple[str, ...] = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "clock",
    "hubble_deep_field", "immunohistochemistry", "grass", "gravel", "brick", "cell", "retina",
    "page", "text", "colorwheel",
)


@dataclass(frozen=True)
class RealParams:
    """Crops of bundled photographs; generations are edited crops."""

    clips: int = 3000
    generations: int = 1000
    dim: int = 64
    side: int = 192  # images resized to side x side grayscale
    patch: int = 32  # crop size in pixels
    grid: int = 2  # each image is grid x grid regions, one creator per region
    held_out_images: int = 3  # images kept out of the catalogue: their crops are novel
    zipf_exponent: float = 0.8
    blend_share: float = 0.3  # generations blending two crops
    blend_alpha: tuple[float, float] = (0.5, 0.8)
    max_shift: int = 3  # a generation's crop is shifted by up to this many pixels
    contrast: tuple[float, float] = (0.6, 1.4)
    brightness: float = 0.1
    pixel_noise: tuple[float, float] = (0.1, 0.4)  # noise std over the crop's pixel std


@functools.lru_cache(maxsize=2)
def _images(side: int) -> np.ndarray:
    """(n_images, side, side) grayscale float32 in [0, 1] of :data:`BUNDLED_IMAGES`."""
    from skimage import color, data, transform, util

    out = []
    for name in BUNDLED_IMAGES:  # a fixed handful of files
        im = util.img_as_float(getattr(data, name)())  # uint8 -> [0, 1]
        im = color.rgb2gray(im[..., :3]) if im.ndim == 3 else im
        out.append(transform.resize(im, (side, side), anti_aliasing=True, order=1))
    return np.stack(out).astype(np.float32)


def _crops(images: np.ndarray, which: np.ndarray, y: np.ndarray, x: np.ndarray,
           size: int) -> np.ndarray:
    """(n, size*size) pixels of the crops at (which, y, x) (top-left corners)."""
    off = np.arange(size)
    rows = (y[:, None] + off)[:, :, None]
    cols = (x[:, None] + off)[:, None, :]
    return images[which[:, None, None], rows, cols].reshape(len(which), -1)


def real(p: RealParams, seed: int) -> Planted:
    from sklearn.decomposition import PCA

    imgs = _images(p.side)
    rng = _rng(seed, _CATALOGUE)
    order = rng.permutation(len(imgs))
    kept, held = order[p.held_out_images:], order[:p.held_out_images]
    region = p.side // p.grid
    n_creators = len(kept) * p.grid * p.grid
    sizes = _zipf_sizes(rng, n_creators, p.clips, p.zipf_exponent)
    creator = np.repeat(np.arange(n_creators), sizes)
    img_of, cell = np.divmod(creator, p.grid * p.grid)
    span = region - p.patch
    y = (cell // p.grid) * region + rng.integers(0, span + 1, p.clips)
    x = (cell % p.grid) * region + rng.integers(0, span + 1, p.clips)
    which = kept[img_of]
    pixels = _crops(imgs, which, y, x, p.patch)
    centred = pixels - pixels.mean(axis=1, keepdims=True)
    pca = PCA(n_components=p.dim, svd_solver="full").fit(centred)

    def embed(px: np.ndarray) -> np.ndarray:
        return _normalize(pca.transform(px - px.mean(axis=1, keepdims=True)))

    g = _rng(seed, _GENERATION)
    held_share = p.held_out_images / len(imgs)
    novel = g.random(p.generations) < held_share
    sourced = np.flatnonzero(~novel)
    n_src = len(sourced)
    blend = g.random(n_src) < p.blend_share
    src = _distinct(g, np.arange(p.clips), n_src, 2)
    lo, hi = p.blend_alpha
    alpha = np.where(blend, g.uniform(lo, hi, n_src), 1.0)
    first = _edited(imgs, which[src[:, 0]], y[src[:, 0]], x[src[:, 0]], p, g)
    second = _edited(imgs, which[src[:, 1]], y[src[:, 1]], x[src[:, 1]], p, g)
    gen_px = np.empty((p.generations, p.patch * p.patch), np.float32)
    gen_px[sourced] = alpha[:, None] * first + (1 - alpha[:, None]) * second
    n_novel = int(novel.sum())
    hw = held[g.integers(0, len(held), n_novel)]
    hy, hx = g.integers(0, p.side - p.patch + 1, (2, n_novel))
    gen_px[novel] = _edited(imgs, hw, hy, hx, p, g)
    sigma = gen_px.std(axis=1, keepdims=True) * g.uniform(*p.pixel_noise, (p.generations, 1))
    gen_px += _noise(g, p.generations, p.patch * p.patch, p.patch) * sigma.astype(np.float32)
    w = np.stack([alpha, 1 - alpha], axis=1)
    used = np.stack([np.ones(n_src, bool), blend], axis=1)
    tg, tc, tw = _truth_rows(sourced, src, w, used)
    none = np.zeros(0, dtype=np.int64)
    return Planted(embed(pixels), creator, n_creators, embed(gen_px), tg, tc, tw, none, none)


def _edited(imgs: np.ndarray, which: np.ndarray, y: np.ndarray, x: np.ndarray, p: RealParams,
            g: np.random.Generator) -> np.ndarray:
    """Crops near (y, x), shifted by up to ``max_shift`` pixels, with contrast and brightness."""
    n = len(which)
    top = p.side - p.patch
    dy, dx = g.integers(-p.max_shift, p.max_shift + 1, (2, n))
    px = _crops(imgs, which, np.clip(y + dy, 0, top), np.clip(x + dx, 0, top), p.patch)
    gain = g.uniform(*p.contrast, (n, 1)).astype(np.float32)
    shift = g.uniform(-p.brightness, p.brightness, (n, 1)).astype(np.float32)
    mean = px.mean(axis=1, keepdims=True)
    return np.clip(mean + gain * (px - mean) + shift, 0.0, 1.0)


# ---- registry and writing ----------------------------------------------------------------------

@dataclass(frozen=True)
class LinearParams:
    """The default family: :func:`residuals.samples.make_samples` (``data/samples``'s sizes)."""

    creators: int = 300
    clips: int = 6000
    generations: int = 3000
    dim: int = 64


@dataclass(frozen=True)
class Family:
    """A named generator with its frozen parameters and its two seeds."""

    name: str
    params: Any  # a frozen *Params dataclass
    plant: Callable[[Any, int], Planted] | None  # None: the linear generator of samples.py
    tune_seed: int  # the seed defaults may be tuned on
    held_out_seed: int  # the seed no default is tuned on: benchmarks report it


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("linear", LinearParams(), None, 7, 2026),
    Family("topics", TopicsParams(), topics, 11, 1011),
    Family("nonlinear", NonlinearParams(), nonlinear, 12, 1012),
    Family("duplicates", DuplicatesParams(), duplicates, 13, 1013),
    Family("anisotropic", AnisotropicParams(), anisotropic, 14, 1014),
    Family("real", RealParams(), real, 15, 1015),
)}


def family(name: str) -> Family:
    """The family called ``name``; an unknown name is one line listing the valid ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ResidualsError(f"name={name!r}: unknown family; expected one of "
                             f"{', '.join(FAMILIES)}") from None


#: The sizes a caller may change, and their least values.
_SIZES = {"creators": 1, "clips": 1, "generations": 1, "dim": 2}


def sized(name: str, **sizes: int | None) -> Any:
    """The family's parameters with the given sizes (None: keep the frozen value).

    A size the family does not have (``creators`` of ``real``, whose creators
    are image regions) is an error naming the parameter.
    """
    fam = family(name)
    known = [f.name for f in fields(fam.params) if f.name in _SIZES]
    given = {k: v for k, v in sizes.items() if v is not None}
    for key in given:
        if key not in known:
            raise ResidualsError(f"`{key}`: not a size of family {name!r} (its sizes: "
                                 f"{', '.join(f'`{k}`' for k in known)})")
    params = replace(fam.params, **given)
    for key, least in _SIZES.items():
        value = getattr(params, key, least)
        if value < least:
            raise ResidualsError(f"{key}={value}: expected >= {least}")
    floor, of = (params.dim, "dim") if name == "real" else (getattr(params, "creators", 1),
                                                            "creators")
    if params.clips < floor:
        raise ResidualsError(f"clips={params.clips}: expected >= `{of}` ({floor})")
    if name == "real" and params.dim > params.patch ** 2:
        raise ResidualsError(f"dim={params.dim}: expected <= {params.patch ** 2} "
                             f"(the pixels of a {params.patch}x{params.patch} crop)")
    return params


def make_family(out: str | Path, name: str, seed: int, params: Any = None) -> None:
    """Write family ``name`` (its frozen parameters unless ``params``) to ``out``.

    Same name, parameters and seed give byte-identical files; ``linear`` is
    exactly :func:`residuals.samples.make_samples`. Staged and moved into place
    only when every file is written.
    """
    fam = family(name)
    params = fam.params if params is None else params
    if fam.plant is None:
        base.make_samples(out, creators=params.creators, clips=params.clips,
                          generations=params.generations, dim=params.dim, seed=seed)
        return
    planted = fam.plant(params, seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ResidualsError(f"out={str(out)!r}: exists and is not a directory")
    with base.staged(out) as stage:
        write_planted(stage, planted, seed)


def _required(table: S.Table, dim: int | None = None, keep: tuple[str, ...] = ()):
    import pyarrow as pa

    return pa.schema([f for f in _schema(table, dim) if f.name in table.required or f.name in keep])


def write_planted(stage: Path, p: Planted, seed: int) -> None:
    """Write the six tables of ``p`` into ``stage`` (ids numbered from 1, zero-padded)."""
    n, m = len(p.clip_emb), len(p.gen_emb)
    accounts = max(1, m // 25)
    cw, kw, gw, aw = _width(p.n_creators), _width(n), _width(m), _width(accounts)
    creator_ids = _ids("creator_", 0, p.n_creators, cw)
    rng = _rng(seed, _META)
    creators = pl.DataFrame({S.CREATOR_ID: creator_ids,
                             S.DISPLAY_NAME: "Creator " + creator_ids.str.slice(8),
                             S.OPTED_OUT: np.zeros(p.n_creators, dtype=bool)})
    clip_ids = _ids("clip_", 0, n, kw)
    owner = creator_ids.gather(pl.Series(p.clip_creator.astype(np.int64)))
    clips = pl.DataFrame({S.CLIP_ID: clip_ids, S.CREATOR_ID: owner})
    account_ids = _ids("acct_", 0, accounts, aw)
    gens = pl.DataFrame({S.GENERATION_ID: _ids("gen_", 0, m, gw),
                         S.ACCOUNT_ID: account_ids.gather(pl.Series(rng.integers(0, accounts, m)))})
    revenue = np.floor(rng.lognormal(np.log(2_000), 1.0, accounts)).astype(np.int64)
    accts = pl.DataFrame({S.ACCOUNT_ID: account_ids, S.REVENUE_MINOR: revenue})
    truth = pl.DataFrame({
        S.GENERATION_ID: _ids_at("gen_", p.truth_gen, gw),
        S.CLIP_ID: _ids_at("clip_", p.truth_clip, kw),
        S.CREATOR_ID: creator_ids.gather(pl.Series(p.clip_creator[p.truth_clip].astype(np.int64))),
        S.WEIGHT: p.truth_weight.astype(np.float64),
    })
    dups = pl.DataFrame({S.CLIP_ID: _ids_at("clip_", p.dup_copy, kw),
                         S.DUPLICATE_OF: _ids_at("clip_", p.dup_orig, kw)})
    dim = p.clip_emb.shape[1]
    for frame, table, schema, emb in (
        (creators, S.CREATORS, _required(S.CREATORS), None),
        (clips, S.CLIPS, _required(S.CLIPS, dim), p.clip_emb),
        (gens, S.GENERATIONS, _required(S.GENERATIONS, dim, (S.ACCOUNT_ID,)), p.gen_emb),
        (accts, S.ACCOUNTS, _required(S.ACCOUNTS), None),
        (truth, S.TRUTH, _required(S.TRUTH), None),
        (dups, S.DUPLICATES, _required(S.DUPLICATES), None),
    ):
        _write(_to_arrow(frame, schema, emb), stage / table.filename, _ROW_GROUP)
