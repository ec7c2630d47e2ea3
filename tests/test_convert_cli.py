"""`keras-pvt convert`: checkpoints to `.weights.h5` / `.keras`, and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from _pvt_reference import FIXTURES, b0_state, expected, fixture_config, images, relative_error
from safetensors.numpy import save_file

from keras_pvt import PVT_V2
from keras_pvt.cli import main


def _config_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(fixture_config(name).to_dict()))
    return path


def test_convert_hf_checkpoint_to_weights_h5(tmp_path: Path, capsys) -> None:
    output = tmp_path / "tiny.weights.h5"
    code = main(
        [
            "convert",
            str(FIXTURES / "tiny_li_hf.safetensors"),
            "--output",
            str(output),
            "--config",
            str(_config_file(tmp_path, "tiny_li")),
        ]
    )
    assert code == 0 and output.is_file()
    assert "hf naming" in capsys.readouterr().out
    model = PVT_V2(fixture_config("tiny_li"), weights=str(output), classifier_activation=None)
    case = "tiny_li/97x131"
    assert relative_error(model(images(case)), expected(case, "logits")) < 1e-4


def test_convert_official_checkpoint_to_keras_model(tmp_path: Path) -> None:
    output = tmp_path / "tiny.keras"
    code = main(
        [
            "convert",
            str(FIXTURES / "tiny_sr_official.npz"),
            "-o",
            str(output),
            "--config",
            str(_config_file(tmp_path, "tiny_sr")),
        ]
    )
    assert code == 0
    model = keras.models.load_model(output)
    case = "tiny_sr/45x60"
    probs = np.asarray(model(images(case)))
    logits = expected(case, "logits")
    want = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(probs, want / want.sum(-1, keepdims=True), atol=1e-5)
    rebuilt = PVT_V2(fixture_config("tiny_sr"), weights=str(output))  # .keras also works as weights=
    np.testing.assert_allclose(np.asarray(rebuilt(images(case))), probs, atol=1e-6)


def test_convert_infers_the_preset_and_can_drop_the_head(tmp_path: Path, capsys) -> None:
    source = tmp_path / "b0.safetensors"
    save_file(b0_state(), str(source))
    output = tmp_path / "b0_backbone.weights.h5"
    assert main(["convert", str(source), "-o", str(output), "--no-top"]) == 0
    assert "pvt_v2_b0" in capsys.readouterr().out
    model = PVT_V2("b0", include_top=False, weights=str(output), features_only=True)
    out = model(images("b0/97x131"))
    assert relative_error(out["stage4"], expected("b0/97x131", "stage4")) < 1e-4
    assert main(["convert", str(source), "-o", str(tmp_path / "x.weights.h5"), "--variant", "b0"]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--variant", "b1"], "does not fit the checkpoint"),
        ([], "--config FILE.json"),
    ],
)
def test_convert_architecture_errors(tmp_path: Path, capsys, extra, message) -> None:
    source = FIXTURES / "tiny_sr_timm.safetensors"
    code = main(["convert", str(source), "-o", str(tmp_path / "o.weights.h5"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err


def test_convert_file_errors(tmp_path: Path, capsys) -> None:
    assert main(["convert", str(FIXTURES / "tiny_sr_timm.safetensors"), "-o", str(tmp_path / "out.h5")]) == 2
    assert ".weights.h5" in capsys.readouterr().err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes((FIXTURES / "tiny_sr_timm.safetensors").read_bytes()[:5000])
    assert main(["convert", str(broken), "-o", str(tmp_path / "o.weights.h5")]) == 2
    assert "truncated, corrupt" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "absent.pth"), "-o", str(tmp_path / "o.keras")]) == 2
    assert "not found" in capsys.readouterr().err


def test_convert_is_listed_in_help(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "convert" in capsys.readouterr().out
