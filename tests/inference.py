"""One eager forward pass in inference mode, as NumPy.

``model.predict`` traces the whole model into a tf.function first, which costs more than the
pass itself for a model run once on a batch of two: ResNet152 at 161x190, 10.4 s through
``predict`` against 2.8 s called directly. The tests that run each model once use this.
"""

import keras


def infer(model, x):
    """``model(x, training=False)`` as a NumPy array, or a list of them for several outputs."""
    outputs = model(x, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(output) for output in outputs]
    return keras.ops.convert_to_numpy(outputs)
