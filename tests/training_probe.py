"""A callback that records what ``fit`` actually trains: the model's outputs and its loss weights."""

import keras


class SeesTheTrainedModel(keras.callbacks.Callback):
    """After ``fit(..., callbacks=[probe])``: ``probe.outputs`` (output names) and ``probe.loss_weights``."""

    def on_train_begin(self, logs=None):
        self.outputs = [output.name for output in self.model.outputs]
        self.loss_weights = self.model.get_compile_config()["loss_weights"]
