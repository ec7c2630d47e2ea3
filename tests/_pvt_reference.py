"""Access to the timm-made parity fixtures in tests/fixtures (see make_reference.py and
make_variant_reference.py there)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import keras
import numpy as np
from _seeded_weights import CASES, case_name, seeded_images, seeded_state_dict, weight_sums

from keras_pvt import PVTV2Config, pyramid_outputs

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The bar: max |ours - timm| <= TOLERANCE * max |timm|, for the logits and every stage map.
TOLERANCE = 1e-4
OUTPUTS = ("logits", "stage1", "stage2", "stage3", "stage4")


@lru_cache(maxsize=1)
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "reference.npz") as archive:
        return {key: archive[key] for key in archive.files}


def fixture_config(name: str) -> PVTV2Config:
    """The architecture of a fixture model ("tiny_sr", "tiny_li" or "b0")."""
    meta = json.loads((FIXTURES / "reference.json").read_text())[name]
    return PVTV2Config(**meta)


def cases(name: str) -> list[str]:
    """Reference cases of one model, e.g. ["tiny_li/224x224", "tiny_li/45x60", ...]."""
    return sorted({key.rsplit("/", 1)[0] for key in reference() if key.startswith(name + "/")})


def images(case: str) -> np.ndarray:
    """The float32 input of a case, exactly as timm received it."""
    return (reference()[f"{case}/pixels"].astype(np.float32) - 127.5) / 64.0


def expected(case: str, output: str) -> np.ndarray:
    return reference()[f"{case}/{output}"]


@lru_cache(maxsize=1)
def b0_state() -> dict[str, np.ndarray]:
    """timm-named float32 state dict of the noisy pvt_v2_b0 (dequantised from int8 + scale)."""
    with np.load(FIXTURES / "b0_int8.npz") as archive:
        names = sorted({key.rsplit(":", 1)[0] for key in archive.files})
        return {n: archive[f"{n}:q"].astype(np.float32) * archive[f"{n}:scale"] for n in names}


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    ours, theirs = keras.ops.convert_to_numpy(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


# Every preset, each with a timm fixture on seeded weights (tests/fixtures/seeded_<variant>.npz).
VARIANTS = ("b0", "b1", "b2", "b2_li", "b3", "b4", "b5")
_REGENERATE = "regenerate the fixtures with `make fixtures` (tests/fixtures/make_variant_reference.py)"


@lru_cache(maxsize=2)
def variant_reference(variant: str) -> dict[str, np.ndarray]:
    """The timm fixture of a preset: its state-dict layout, weight fingerprint and outputs per case."""
    with np.load(FIXTURES / f"seeded_{variant}.npz") as archive:
        return {key: archive[key] for key in archive.files}


def variant_layout(variant: str) -> list[tuple[str, tuple[int, ...]]]:
    """timm's state-dict names and shapes of a preset, in timm's order, as the fixture recorded them."""
    pairs = json.loads(str(variant_reference(variant)["layout"]))
    return [(name, tuple(int(d) for d in shape)) for name, shape in pairs]


def check_seeded_state(variant: str, state: Mapping[str, np.ndarray]) -> None:
    """Raise AssertionError naming the tensors whose values differ from those timm ran."""
    layout = variant_layout(variant)
    sums, recorded = weight_sums(dict(state), layout), variant_reference(variant)["weight_sums"]
    differ = [name for (name, _), a, b in zip(layout, sums, recorded, strict=True) if not np.isclose(a, b)]
    if differ:
        raise AssertionError(
            f"{len(differ)} of {len(layout)} seeded {variant} tensors differ from the fixture's "
            f"(first: {', '.join(differ[:3])}): the seeded generator changed; {_REGENERATE}."
        )


def seeded_variant_state(variant: str) -> dict[str, np.ndarray]:
    """The timm-named float32 state dict timm ran for the fixture, regenerated from its seed."""
    state = seeded_state_dict(variant_layout(variant))
    check_seeded_state(variant, state)
    return state


def variant_cases() -> list[tuple[str, np.ndarray]]:
    """(case, float32 NHWC images) of every fixture size, e.g. ("45x71", (1, 45, 71, 3))."""
    return [(case_name(h, w), seeded_images(h, w, batch)) for h, w, batch in CASES]


def variant_expected(variant: str, case: str, output: str) -> np.ndarray:
    return variant_reference(variant)[f"{case}/{output}"]


def stages_and_logits(classifier: keras.Model) -> keras.Model:
    """One model of a `PVT_V2(..., classifier_activation=None)`: its four stage maps and its logits."""
    stages = {f"stage{int(key[1:]) - 1}": value for key, value in pyramid_outputs(classifier).items()}
    return keras.Model(classifier.input, {**stages, "logits": classifier.output})


def variant_errors(variant: str, case: str, outputs: Mapping[str, np.ndarray]) -> dict[str, float]:
    """`relative_error` of each of `OUTPUTS` against the variant's timm fixture."""
    return {key: relative_error(outputs[key], variant_expected(variant, case, key)) for key in OUTPUTS}
