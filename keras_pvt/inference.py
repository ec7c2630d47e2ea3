"""`compile_inference` for `keras_pvt.inference` users; it lives in `keras_pvt.kernels.inference`."""

from keras_pvt.kernels.inference import compile_inference, resolve_strategy, takes_raw_pixels

__all__ = ["compile_inference", "resolve_strategy", "takes_raw_pixels"]
