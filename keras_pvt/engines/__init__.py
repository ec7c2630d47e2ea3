"""The converting engines of `compile_inference(model, engine=...)` (TensorFlow only).

Each input shape (batch, height, width, channels) is built once, on its first call, and cached
(`cache.MAX_SHAPES` shapes at a time, least recently used dropped first):

* "litert" (`litert`): a float32 `.tflite` converted for that exact shape (the export's
  `convert_to_tflite`), run by LiteRT with its XNNPACK delegate. One interpreter per shape, behind a
  lock: concurrent calls of one shape run one at a time.
* "openvino" (`openvino`): the model converted by `keras_pvt.export.openvino` for that shape (with
  the OpenVINO rewrite) and compiled for the CPU in float32 (``pip install 'keras-pvt[openvino]'``).
  Thread-safe: a pool of infer requests, one per concurrent call.
* "measure" (`measure`): every installed engine ("xla" through `tensorflow`, and the two above) is
  built for the new shape and timed alternately on the caller's images; the fastest is kept (the
  others dropped), and remembered in the optional `engine_cache` JSON file (`choices`), so a later
  process builds only the winner.

They convert a copy of the model rebuilt from its config with the weights of `compile_inference`
time (`snapshot`), so they run float32 and ignore later weight changes; outputs (`outputs`) have the
model's structure, as TensorFlow tensors, equal to ``model(images, training=False)`` to float32
round-off. First-call cost and thread-safety per engine: docs/performance.md, "Inference engines".
`keras_pvt.inference` imports `compiled` directly, on first use.
"""

from keras_pvt._requires import require_tensorflow

require_tensorflow("keras_pvt.engines")  # one clear ImportError where TensorFlow is absent

from keras_pvt.engines.cache import MAX_SHAPES
from keras_pvt.engines.compiled import AUTO_CANDIDATES, EngineInference, available_engines, compile_engine

__all__ = ["AUTO_CANDIDATES", "MAX_SHAPES", "EngineInference", "available_engines", "compile_engine"]
