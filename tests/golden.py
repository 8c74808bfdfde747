"""Golden tensors for models without an installable reference (ReXNet-lite, SqueezeNet bypasses).

Weights are set from a seeded NumPy generator in graph order (independent of
Keras initializers), the input is seeded too, and the logits are stored in
``tests/golden/<name>.npz``. ``scripts/make_golden.py`` writes them; only
regenerate after checking a change against the reference code by hand.
"""

import os

import keras
import numpy as np

import keras_lightnets as kl

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "golden")
# Every compared variant whose table row says ``equals="golden"`` (no installable reference); a
# variant that differs from a compared sibling only in its numbers (ParNet-M/L/XL) is not run.
GOLDEN_MODELS = [
    name for name in kl.list_models() if kl.get_entry(name).equals == "golden" and kl.get_entry(name).compared
]
INPUT_SHAPE = (64, 80, 3)


def seeded_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape = tuple(weight.shape)
            if weight.path.endswith(("moving_variance", "gamma")):
                values.append(rng.uniform(0.5, 1.5, shape))
            elif len(shape) > 1:
                depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
                fan_in = np.prod(shape[:2]) if depthwise else np.prod(shape[:-1])
                values.append(rng.standard_normal(shape) / np.sqrt(fan_in))
            else:
                values.append(rng.standard_normal(shape) * 0.1)
        if values:
            layer.set_weights([value.astype("float32") for value in values])
    return model


def golden_case(name):
    """``(model, input)`` for a golden model: seeded weights, seeded input, logits out."""
    model = seeded_weights(kl.create_model(name, input_shape=INPUT_SHAPE, classifier_activation=None))
    x = np.random.default_rng(1).standard_normal((2, *INPUT_SHAPE)).astype("float32")
    return model, x


def golden_path(name):
    return os.path.join(GOLDEN_DIR, f"{name}.npz")
