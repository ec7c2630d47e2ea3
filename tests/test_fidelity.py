"""Parity with the PyTorch reference: timm's own outputs (tests/fixtures, made by timm) vs ours.

Bar: max abs difference <= 1e-4 x max |reference|, for the logits and each of the four stage maps.
Covers the strided (b0, tiny) and linear/Li (tiny) attention, square 224, odd non-square 97x131 and
45x60 inputs (uneven adaptive-pooling windows; maps smaller than 7), and the official, timm and HF
naming schemes. With torch + timm installed, every preset is also compared at full size.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from _pvt_reference import (
    FIXTURES,
    OUTPUTS,
    TOLERANCE,
    b0_state,
    cases,
    expected,
    fixture_config,
    images,
    relative_error,
)

from keras_pvt import PVT_V2
from keras_pvt.checkpoints import load_checkpoint

CHECKPOINTS = [
    ("tiny_sr", "tiny_sr_timm.safetensors", "timm"),
    ("tiny_sr", "tiny_sr_official.npz", "official"),
    ("tiny_li", "tiny_li_timm.safetensors", "timm"),
    ("tiny_li", "tiny_li_hf.safetensors", "hf"),
]


def _models(config, checkpoint):
    """(features model, logits model), both loaded from `checkpoint` (a path or a state dict)."""
    features = PVT_V2(config, features_only=True)
    classifier = PVT_V2(config, classifier_activation=None)
    schemes = {load_checkpoint(m, checkpoint, config=config)["scheme"] for m in (features, classifier)}
    return features, classifier, schemes.pop()


def _compare(features, classifier, case: str) -> dict[str, float]:
    x = images(case)
    outputs = {key: keras.ops.convert_to_numpy(value) for key, value in features(x).items()}
    outputs["logits"] = keras.ops.convert_to_numpy(classifier(x))
    return {key: relative_error(outputs[key], expected(case, key)) for key in OUTPUTS}


@pytest.mark.all_backends
@pytest.mark.parametrize(("name", "filename", "scheme"), CHECKPOINTS)
def test_tiny_checkpoints_match_timm(name: str, filename: str, scheme: str) -> None:
    config = fixture_config(name)
    features, classifier, detected = _models(config, FIXTURES / filename)
    assert detected == scheme
    for case in cases(name):
        errors = _compare(features, classifier, case)
        assert max(errors.values()) <= TOLERANCE, (case, errors)


def test_official_pth_matches_timm() -> None:
    # Read by keras-pvt's own torch-free unpickler: no torch needed.
    config = fixture_config("tiny_sr")
    features, classifier, detected = _models(config, FIXTURES / "tiny_sr_official.pth")
    assert detected == "official"
    errors = _compare(features, classifier, "tiny_sr/97x131")
    assert max(errors.values()) <= TOLERANCE, errors


def test_b0_matches_timm_at_224_and_odd_size() -> None:
    features, classifier, detected = _models("b0", b0_state())
    assert detected == "timm"
    assert cases("b0") == ["b0/224x224", "b0/97x131"]
    for case in cases("b0"):
        errors = _compare(features, classifier, case)
        assert max(errors.values()) <= TOLERANCE, (case, errors)
        # The fixture's logits are far from zero, so the bar is a real constraint.
        assert np.abs(expected(case, "logits")).max() > 0.1


def test_reference_has_li_windows_uneven_and_maps_below_seven() -> None:
    config = fixture_config("tiny_li")
    assert config.linear
    sizes = [tuple(int(s) for s in case.split("/")[1].split("x")) for case in cases("tiny_li")]
    maps = [config.stage_sizes(h) + config.stage_sizes(w) for h, w in sizes]
    assert any(m % 7 for per_size in maps for m in per_size)  # uneven pooling windows
    assert any(m < 7 for per_size in maps for m in per_size)  # maps smaller than the pool


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["b0", "b1", "b2", "b2_li", "b3", "b4", "b5"])
def test_every_variant_full_size_against_installed_timm(variant: str) -> None:
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model(f"pvt_v2_{variant}", pretrained=False).eval()
    with torch.no_grad():
        for param in reference.parameters():
            param.add_(0.02 * torch.randn_like(param))
    state = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    features, classifier, _ = _models(variant, state)
    rng = np.random.default_rng(0)
    for height, width in ((224, 224), (97, 131)):
        x = rng.standard_normal((1, height, width, 3)).astype(np.float32)
        with torch.no_grad():
            tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
            want = {"logits": reference(tx).numpy()}
            stages = reference.forward_intermediates(tx, intermediates_only=True)
            for i, stage in enumerate(stages):
                want[f"stage{i + 1}"] = stage.numpy().transpose(0, 2, 3, 1)
        got = {k: np.asarray(v) for k, v in features(x).items()}
        got["logits"] = np.asarray(classifier(x))
        errors = {k: relative_error(got[k], want[k]) for k in OUTPUTS}
        assert max(errors.values()) <= TOLERANCE, (variant, height, width, errors)
