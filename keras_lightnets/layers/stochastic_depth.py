"""Stochastic depth ("drop path"), Huang et al. 2016."""

import keras
from keras import ops

__all__ = ["StochasticDepth"]


@keras.saving.register_keras_serializable(package="keras_lightnets")
class StochasticDepth(keras.layers.Layer):
    """Drops a residual branch for a whole sample with probability ``rate`` during training.

    The kept samples are scaled by ``1 / (1 - rate)`` so the expectation is
    unchanged (timm's ``DropPath``). At inference it is the identity. No Keras
    layer does this: ``Dropout(noise_shape=(None, 1, 1, 1))`` needs a static
    batch size.

    A layer with ``trainable = False`` is the identity in training too, as a frozen Keras 3
    ``BatchNormalization`` runs in inference mode: a block frozen for transfer learning
    (:func:`keras_lightnets.transfer.freeze` sets the flag on each of its layers) then computes in
    ``fit`` exactly what it computes at inference.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or not self.trainable or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator, dtype=inputs.dtype)
        mask = ops.floor(noise + ops.cast(keep, inputs.dtype))
        return inputs * mask / ops.cast(keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
