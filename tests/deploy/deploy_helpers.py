"""Small models and data for the deploy tests (imported by name: never import conftest)."""

import keras
from batchnorm import randomize_batchnorm  # noqa: F401  (the deploy tests import it from here)

from keras_lightnets.data import make_dataset
from keras_lightnets.registry import get_entry, get_family, representative_models

# One variant per registered family (its smallest): a new family is in every per-family check.
FAMILY_VARIANTS = tuple(representative_models())
TEST_SIZE = 32
# Architecture arguments the per-family deploy checks add: PolyNet's 40 modules take minutes to
# annotate for QAT on 2 cores; 1, 2 and 2 modules keep every kind of module (2-way A, B and C;
# poly-3 B and C with their shared convolutions).
# DenseNet-121 with 1, 2, 2, 1 layers per block: every kind of layer (pre-activation units, concatenations,
# transitions with their average pools, the final BN-ReLU) in a seventh of the QAT time.
ARCHITECTURE_OVERRIDES = {
    # Xception with one middle-flow block, pre-activation ResNet with one bottleneck per stage: every kind
    # of block in a fraction of the QAT time.
    "legacy_xception": {"middle_blocks": 1},
    "resnetv2_50": {"blocks": (1, 1, 1, 1)},
    "polynet": {"modules": (1, 2, 2)},
    "densenet121": {"blocks": (1, 2, 2, 1)},
    # PyramidNet-164 (54 bottleneck units) as PyramidNet-29: 3 units per stage keep every kind (the
    # zero-padded identity, the ceil-mode pooled shortcut of a downsampling unit) in a sixth of the QAT time.
    "pyramidnet164_a48_bottleneck_cifar10": {"depth": 29},
    # NASNet-A Mobile with one normal cell per stack: every cell kind and adjust path, a third of the cells.
    "nasnet_mobile": {"num_blocks": 1},
    # Inception-ResNet-v2's 40 blocks as one of each kind (A, B, and the unscaled, unactivated last C).
    "inception_resnet_v2": {"blocks": (1, 1, 1)},
    # ConvNeXt's residual branches start at a gain of 1e-6 (LayerScale): their int8 outputs round to 0 and
    # stop the gradient to every branch weight, which says nothing about QAT. Trained ConvNeXts have gains
    # of 0.1-1; at 0.1 every weight is reached, as in a fine-tuned model.
    "convnext_atto": {"layer_scale_init_value": 0.1},
}


def input_size_for(name):
    """The input size the per-family checks build ``name`` at: TEST_SIZE, or the smallest its family
    takes (AlexNet's 11x11/4 stem and three pools need 63 pixels)."""
    return max(TEST_SIZE, get_family(get_entry(name).family).min_input_size)


def tiny_classifier(classes=10, name="tiny_cnn"):
    """Conv-BN-ReLU x3 + SE-style gate + GAP + Dense (logits): trains to >80 % on the digits in seconds."""
    inputs = keras.Input((TEST_SIZE, TEST_SIZE, 3), name="input")
    x = inputs
    for index, filters in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(6.0, name=f"relu{index}")(x)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    gate = keras.layers.Conv2D(64, 1, activation="sigmoid", name="se_gate")(gate)
    x = keras.layers.Multiply(name="se")([x, gate])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def unit_range_test_images(count=64):
    """``count`` bundled test images as ``pixel / 255`` and their labels, in evaluation order."""
    data = make_dataset(
        "lightnets_digits",
        "test",
        image_size=TEST_SIZE,
        batch_size=count,
        training=False,
        preset="cifar",
        mean=0.0,
        std=1.0,
    )
    images, labels = next(iter(data.as_numpy_iterator()))
    return images, labels.argmax(-1)
