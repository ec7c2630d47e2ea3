"""Every preset (b0 ... b5, b2_li: the full architectures) against timm, without torch.

timm ran each preset on weights regenerated here from a seed (tests/_seeded_weights.py), at 64x64
(two images) and 45x71 (uneven reduction and pooling windows, maps down to 2x3); the fixtures hold its
logits and four stage maps (tests/fixtures/make_variant_reference.py). Bar: max |ours - timm| <=
1e-4 x max |timm| per output, as in tests/test_fidelity.py. The weights make attention far from
uniform, so a wrong head count fails the bar (tested below), as would a dropped bias or norm.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from _pvt_reference import (
    OUTPUTS,
    TOLERANCE,
    VARIANTS,
    check_seeded_state,
    seeded_variant_state,
    stages_and_logits,
    variant_cases,
    variant_errors,
    variant_layout,
    variant_reference,
)
from _seeded_weights import CASES, seeded_state_dict

from keras_pvt import PVT_V2, PVTV2Config
from keras_pvt.presets import get_config

# The deep presets take 5-10 s each to build and run on 2 cores: in the slow lane.
DEEP = ("b3", "b4", "b5")
# A wrong head count must miss the bar by far, not by round-off.
WRONG_BY_FAR = 100 * TOLERANCE


def _outputs(model: keras.Model, images: np.ndarray) -> dict[str, np.ndarray]:
    return {key: keras.ops.convert_to_numpy(value) for key, value in model(images).items()}


def _seeded_model(config: PVTV2Config | str, variant: str) -> keras.Model:
    """`config` built with the seeded weights of `variant`'s fixture, stage maps and logits out."""
    return stages_and_logits(
        PVT_V2(config, weights=seeded_variant_state(variant), classifier_activation=None)
    )


@pytest.mark.parametrize(
    "variant", [pytest.param(v, marks=pytest.mark.slow) if v in DEEP else v for v in VARIANTS]
)
def test_variant_matches_timm_on_seeded_weights(variant: str) -> None:
    model = _seeded_model(variant, variant)
    for case, images in variant_cases():
        errors = variant_errors(variant, case, _outputs(model, images))
        assert max(errors.values()) <= TOLERANCE, (variant, case, errors)


def test_a_wrong_head_count_misses_the_bar() -> None:
    # b0 with 4 heads instead of 5 in stage 3: the same weights load (same shapes), the maps differ.
    config = get_config("b0").replace(num_heads=(1, 2, 4, 8))
    model = _seeded_model(config, "b0")
    case, images = variant_cases()[1]
    errors = variant_errors("b0", case, _outputs(model, images))
    assert max(errors["stage1"], errors["stage2"]) <= TOLERANCE, errors  # stages before the change
    assert min(errors["stage3"], errors["stage4"], errors["logits"]) > WRONG_BY_FAR, errors


def test_weights_of_another_seed_are_refused_by_the_fingerprint() -> None:
    other = seeded_state_dict(variant_layout("b0"), seed=1)
    with pytest.raises(AssertionError, match="seeded b0 tensors differ"):
        check_seeded_state("b0", other)


def test_fixtures_hold_every_output_of_both_sizes_for_every_variant() -> None:
    want = {f"{h}x{w}/{key}" for h, w, _ in CASES for key in OUTPUTS} | {"layout", "weight_sums", "meta"}
    for variant in VARIANTS:
        assert set(variant_reference(variant)) == want, variant


def test_odd_size_has_uneven_windows_and_maps_below_seven() -> None:
    height, width, _ = CASES[1]
    for variant in VARIANTS:
        config = get_config(variant)
        assert min(height, width) >= config.min_input_size()
        maps = config.stage_sizes(height) + config.stage_sizes(width)
        ratios = list(config.sr_ratios) * 2
        assert any(m < 7 for m in maps)  # Li: adaptive pooling to 7x7 upsamples
        assert any(m % 7 for m in maps)  # Li: uneven pooling windows
        if not config.linear:  # spatial reduction with kernel = stride: maps not a multiple
            assert any(m % r for m, r in zip(maps, ratios, strict=True) if r > 1)
