"""timm's random-init PVT-v2 weights and outputs, written once so that every contestant built from timm
(timm, ONNX Runtime, OpenVINO, litert-torch) and keras-pvt runs the same weights and can be compared.

    python benchmarks/timm_weights.py --variant b0 --out FOLDER   (in the timm or lt peer venv)

Writes `FOLDER/timm_pvt_v2_<variant>.safetensors` (the state dict of
`timm.create_model("pvt_v2_<variant>")` after `torch.manual_seed(0)`) and
`FOLDER/timm_pvt_v2_<variant>_reference.npz` (`images`: REFERENCE_IMAGES standard-normal images,
NHWC float32; `logits`: timm's outputs for them in eval mode), each written beside and renamed, and
prints one JSON line naming both files and the versions used. Files already there are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REFERENCE_IMAGES = 2
SIZE = 224


def paths(folder: Path, variant: str) -> dict[str, Path]:
    """Where the weights and the reference outputs of `variant` go in `folder`."""
    stem = f"timm_pvt_v2_{variant}"
    return {"weights": folder / f"{stem}.safetensors", "reference": folder / f"{stem}_reference.npz"}


def write_beside(path: Path, write: Any) -> None:
    """`write(partial_path)`, then rename the partial file to `path`."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    write(partial)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import numpy as np
    import timm
    import torch
    from safetensors.torch import save_file

    files = paths(args.out, args.variant)
    args.out.mkdir(parents=True, exist_ok=True)
    if not all(path.exists() for path in files.values()):
        torch.manual_seed(0)
        model = timm.create_model(f"pvt_v2_{args.variant}", pretrained=False).eval()
        state = {key: value.contiguous() for key, value in model.state_dict().items()}
        images = torch.randn(REFERENCE_IMAGES, 3, SIZE, SIZE)
        with torch.inference_mode():
            logits = model(images).numpy()
        write_beside(files["weights"], lambda path: save_file(state, str(path)))
        nhwc = images.permute(0, 2, 3, 1).numpy()
        write_beside(files["reference"], lambda path: np.savez(path, images=nhwc, logits=logits))
    versions = {"torch": torch.__version__, "timm": timm.__version__, "numpy": np.__version__}
    print(json.dumps({**{key: str(path) for key, path in files.items()}, "versions": versions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
