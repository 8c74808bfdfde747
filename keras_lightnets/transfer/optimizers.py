"""Optimizers that train the unfrozen body at a fraction of the head's learning rate.

Keras 3 has one learning rate per optimizer. These subclasses of Keras's SGD, RMSprop, Adam
and AdamW scale it for the variables they are told belong to the body: every update step
(and the decoupled weight decay, which Keras also multiplies by the rate) uses
``learning_rate * body_rate`` for them and ``learning_rate`` for the rest. With SGD without
momentum a body variable's update is exactly ``body_rate`` times what it would be at full rate.

    plan = freeze(model, "from-back:3")
    model.compile(optimizer=BodyRateAdamW(1e-3, body_rate=0.1, body_variables=plan.body_variables), ...)

Body variables are named by their paths (``variable.path``, ``"block6a_expand_conv/kernel"``),
so the configuration is plain strings: the optimizer saves with the model (``final.keras``) and
loads back (the classes are registered serializable) with the same split.
"""

import keras

from keras_lightnets.checks import check_positive

__all__ = ["BodyRateAdam", "BodyRateAdamW", "BodyRateRMSprop", "BodyRateSGD", "body_rate_class"]


class _BodyRate:
    """The mixin: ``body_rate`` times the learning rate for the variables in ``body_variables``."""

    def __init__(self, *args, body_rate=0.1, body_variables=(), **kwargs):
        super().__init__(*args, **kwargs)
        check_positive(body_rate, "body_rate")
        if isinstance(body_variables, str):
            raise TypeError(f"`body_variables` must be a list of variable paths, got the string {body_variables!r}")
        self.body_rate = float(body_rate)
        self.body_variables = tuple(getattr(variable, "path", variable) for variable in body_variables)
        self._body_paths = frozenset(self.body_variables)
        self._in_body = []

    def _is_body(self, variable):
        return getattr(variable, "path", None) in self._body_paths

    def build(self, variables):
        super().build(variables)
        # Indexed like the optimizer's own slots: update_step gets the backend variable (a
        # tf.Variable with TensorFlow), whose index the base class knows.
        self._in_body = [self._is_body(variable) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        if self._in_body[self._get_variable_index(variable)]:
            learning_rate = keras.ops.multiply(learning_rate, self.body_rate)
        super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        head = [variable for variable in variables if not self._is_body(variable)]
        body = [variable for variable in variables if self._is_body(variable)]
        super()._apply_weight_decay(head)
        if body:
            # Decoupled decay is `variable -= variable * weight_decay * learning_rate`: the body's
            # rate applies to it too. The attribute is read while the step is traced.
            weight_decay = self.weight_decay
            self.weight_decay = weight_decay * self.body_rate
            try:
                super()._apply_weight_decay(body)
            finally:
                self.weight_decay = weight_decay

    def get_config(self):
        return {**super().get_config(), "body_rate": self.body_rate, "body_variables": list(self.body_variables)}


@keras.saving.register_keras_serializable(package="keras_lightnets")
class BodyRateSGD(_BodyRate, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with ``body_rate`` times the rate for ``body_variables`` (variable paths)."""


@keras.saving.register_keras_serializable(package="keras_lightnets")
class BodyRateRMSprop(_BodyRate, keras.optimizers.RMSprop):
    """``keras.optimizers.RMSprop`` with ``body_rate`` times the rate for ``body_variables`` (variable paths)."""


@keras.saving.register_keras_serializable(package="keras_lightnets")
class BodyRateAdam(_BodyRate, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with ``body_rate`` times the rate for ``body_variables`` (variable paths)."""


@keras.saving.register_keras_serializable(package="keras_lightnets")
class BodyRateAdamW(_BodyRate, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with ``body_rate`` times the rate for ``body_variables`` (variable paths)."""


_CLASSES = {
    keras.optimizers.SGD: BodyRateSGD,
    keras.optimizers.RMSprop: BodyRateRMSprop,
    keras.optimizers.Adam: BodyRateAdam,
    keras.optimizers.AdamW: BodyRateAdamW,
}


def body_rate_class(optimizer_class):
    """The body-rate subclass of a Keras optimizer class (SGD, RMSprop, Adam, AdamW)."""
    if optimizer_class not in _CLASSES:
        raise TypeError(
            f"no body-rate version of {getattr(optimizer_class, '__name__', optimizer_class)!r}; available for "
            f"{', '.join(cls.__name__ for cls in _CLASSES)}"
        )
    return _CLASSES[optimizer_class]
