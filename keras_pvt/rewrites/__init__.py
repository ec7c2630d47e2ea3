"""Target rewrites: a model's layers swapped, from outside the model, for equivalents a target runs faster.

The layers (`keras_pvt.layers`) compute PVT-v2's maths in one plain form. A target whose compiler
runs another form of the same maths faster gets a `Rewrite` (`targets`): a copy of the model with
some layers replaced by subclasses holding the same weights (`swap.rewritten`). Each rewrite is kept
only where it measures faster (`benchmarks/results/`), and equals the plain model to float32
round-off on every backend.
"""

from keras_pvt.rewrites.swap import Rewrite, rewritten, swap_in_place
from keras_pvt.rewrites.targets import OPENVINO, TFLITE_FLOAT, XLA

__all__ = ["OPENVINO", "TFLITE_FLOAT", "XLA", "Rewrite", "rewritten", "swap_in_place"]
