"""PVTV2Config: presets, validation messages, dict round trip, geometry helpers."""

from __future__ import annotations

import pytest

from keras_pvt import PRESETS, PVTV2Config, get_config
from keras_pvt.presets import canonical_variant


def test_official_preset_values():
    b0, b5 = PRESETS["b0"], PRESETS["b5"]
    assert b0.embed_dims == (32, 64, 160, 256) and b0.depths == (2, 2, 2, 2)
    assert b0.num_heads == (1, 2, 5, 8) and b0.sr_ratios == (8, 4, 2, 1)
    assert b0.mlp_ratios == (8, 8, 4, 4) and b0.qkv_bias
    assert b5.mlp_ratios == (4, 4, 4, 4) and b5.depths == (3, 6, 40, 3)
    assert PRESETS["b2_li"].linear and not PRESETS["b2"].linear
    assert PRESETS["b2_li"].depths == PRESETS["b2"].depths


@pytest.mark.parametrize("name", ["b2_li", "pvt_v2_b2_li", "PVT_V2_B2_LI", "pvtv2-b2-li"])
def test_variant_names_are_normalised(name):
    assert canonical_variant(name) == "b2_li"
    assert get_config(name) is PRESETS["b2_li"]


def test_unknown_variant_lists_choices():
    with pytest.raises(ValueError, match=r"Unknown PVT-v2 variant 'b9'.*b0"):
        get_config("b9")


def test_dict_round_trip():
    config = PRESETS["b2_li"].replace(num_classes=7, drop_path_rate=0.2, img_size=(192, 256))
    data = config.to_dict()
    assert isinstance(data["embed_dims"], list)
    assert PVTV2Config.from_dict(data) == config


def test_unknown_field_is_rejected():
    with pytest.raises(ValueError, match=r"Unknown PVTV2Config field.*'embed_dim'"):
        PVTV2Config.from_dict({"embed_dim": (1, 2, 3, 4)})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"depths": (2, 2, 2)}, r"`depths` has 3 values but `num_stages` is 4"),
        (
            {"embed_dims": (32, 64, 160, 250)},
            r"`embed_dims\[3\]` = 250 is not divisible by `num_heads\[3\]` = 8",
        ),
        ({"drop_path_rate": 1.0}, r"`drop_path_rate` must be in \[0, 1\)"),
        ({"attn_drop_rate": -0.1}, r"`attn_drop_rate` must be in \[0, 1\)"),
        ({"drop_rate": 1.5}, r"`drop_rate` must be in \[0, 1\)"),
        ({"num_heads": (1, 0, 5, 8)}, r"`num_heads\[1\]` must be a positive integer"),
        ({"sr_ratios": (8, 4, 2, 0)}, r"`sr_ratios\[3\]` must be a positive integer"),
        ({"mlp_ratios": (8, 8, 4, 0)}, r"`mlp_ratios\[3\]` must be a positive number"),
        ({"num_classes": -1}, r"`num_classes` must be an integer >= 0"),
        ({"in_channels": 0}, r"`in_channels` must be a positive integer"),
        ({"img_size": 16}, r"`img_size` 16 is too small: this architecture needs at least 29x29"),
        ({"img_size": (224, 0)}, r"`img_size` must be a positive int or \(height, width\)"),
        ({"qk_scale": 0.0}, r"`qk_scale` must be None or a positive number"),
        ({"num_stages": 0}, r"`num_stages` must be a positive integer"),
        ({"depths": 3}, r"`depths` must be a sequence with one value per stage"),
    ],
)
def test_invalid_configs_name_the_problem(changes, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["b0"].replace(**changes)


def test_all_problems_are_listed_at_once():
    config = PRESETS["b0"]
    with pytest.raises(ValueError) as info:
        config.replace(drop_rate=2.0, attn_drop_rate=2.0)
    assert "drop_rate" in str(info.value) and "attn_drop_rate" in str(info.value)


def test_geometry_helpers():
    b0 = PRESETS["b0"]
    assert b0.strides == (4, 8, 16, 32)
    assert b0.stage_sizes(224) == [56, 28, 14, 7]
    assert b0.stage_sizes(193) == [49, 25, 13, 7]
    assert b0.min_input_size() == 29
    assert PRESETS["b2_li"].min_input_size() == 1
    rates = PRESETS["b0"].replace(drop_path_rate=0.1).drop_path_rates()
    assert len(rates) == 8 and rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)
    assert rates == sorted(rates)


def test_flops_match_the_paper():
    # The paper's "GFLOPs" are multiply-accumulates; ours count 2 per MAC.
    paper_gmacs = {"b0": 0.6, "b1": 2.1, "b2": 4.0, "b2_li": 3.9, "b3": 6.9, "b4": 10.1, "b5": 11.8}
    for name, gmacs in paper_gmacs.items():
        assert PRESETS[name].flops(224) / 2e9 == pytest.approx(gmacs, abs=0.1), name
