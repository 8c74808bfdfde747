"""Random BatchNorm statistics for Keras models: folding, fusing and copying mistakes show in the outputs."""

import keras
import numpy as np


def randomize_batchnorm(model, seed=0):
    """Every BatchNormalization of ``model`` gets non-trivial gamma, beta, moving mean and variance."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, variance.shape).astype("float32"),
                ]
            )
    return model
