"""Random BatchNorm statistics for Keras models: folding, fusing and copying mistakes show in the outputs."""

import keras
import numpy as np


def randomize_batchnorm(model, seed=0):
    """Every BatchNormalization of ``model`` gets non-trivial gamma, beta, moving mean and variance."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # keras.applications' Inception BatchNorms have no learned scale (scale=False): no gamma
            *affine, mean, variance = layer.get_weights()
            randomized = [rng.uniform(0.5, 1.5, affine[0].shape).astype("float32")] if layer.scale else []
            if layer.center:
                randomized.append(rng.normal(0, 0.1, affine[-1].shape).astype("float32"))
            randomized += [
                rng.normal(0, 0.1, mean.shape).astype("float32"),
                rng.uniform(0.5, 1.5, variance.shape).astype("float32"),
            ]
            layer.set_weights(randomized)
    return model
