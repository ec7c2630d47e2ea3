"""Inference: `compile_inference`, a model compiled for inference on the fastest engine by default.

`api` holds `compile_inference`; `engines` the engine names, the default rule and the old spellings;
`checks` the argument and image checks; one compiler per backend (`tf_compile`, `jax_compile`,
`torch_compile`), each imported on first use, so importing this package loads no TensorFlow, JAX or
PyTorch. The converting engines ("litert", "openvino", "measure") live in `keras_pvt.engines`.
"""

from keras_pvt.images import takes_raw_pixels  # one definition, beside preprocess_input
from keras_pvt.inference.api import compile_inference
from keras_pvt.inference.engines import ENGINES

__all__ = ["ENGINES", "compile_inference", "takes_raw_pixels"]
