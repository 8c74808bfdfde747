"""PyTorch ceil-mode max pooling: max_pool_ceil's standard layers (static size), CeilMaxPool2D (any
size), its tf_keras twin and a written-out ceil-mode pool agree, negative inputs included."""

import keras
import numpy as np
import pytest
from keras import layers

from keras_lightnets.layers import CeilMaxPool2D, max_pool_ceil

SIZES = range(7, 41)
# every size on each axis, with an odd and an even size on the other (one rule or two per pool)
SIZE_PAIRS = sorted({(n, m) for n in SIZES for m in (7, 8)} | {(m, n) for n in SIZES for m in (7, 8)})


def ceil_mode_size(size, pool, stride):
    """PyTorch's pooling output size with ceil_mode=True and no padding."""
    out = -(-(size - pool) // stride) + 1
    if (out - 1) * stride >= size:  # a last window must start inside the input
        out -= 1
    return out


def numpy_max_pool_ceil(x, pool=(3, 3), stride=(2, 2)):
    """PyTorch MaxPool2d(pool, stride, ceil_mode=True) on NHWC, written out: windows clipped at the end."""
    _, height, width, _ = x.shape
    out_h, out_w = ceil_mode_size(height, pool[0], stride[0]), ceil_mode_size(width, pool[1], stride[1])
    out = np.empty((x.shape[0], out_h, out_w, x.shape[3]), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, i * stride[0] : i * stride[0] + pool[0], j * stride[1] : j * stride[1] + pool[1]]
            out[:, i, j] = window.max(axis=(1, 2))
    return out


def random_input(rng, height, width, channels=2):
    return rng.standard_normal((2, height, width, channels)).astype("float32") - 3.0  # mostly negative


def test_ceil_max_pool_3_2_equals_ceil_mode_and_the_static_layers(rng):
    pool = CeilMaxPool2D(3, 2)
    static_layer_types = set()
    for height, width in SIZE_PAIRS:
        x = random_input(rng, height, width)
        expected = numpy_max_pool_ceil(x)
        np.testing.assert_array_equal(pool(x).numpy(), expected, err_msg=f"{height}x{width}")
        static = max_pool_ceil(keras.ops.convert_to_tensor(x), name="pool")  # eager: the static path
        np.testing.assert_array_equal(np.asarray(static), expected, err_msg=f"static {height}x{width}")
        assert pool.compute_output_shape(x.shape) == expected.shape
    # the static path is made of standard layers only (exactness and TFLite graphs unchanged)
    for height in SIZES:
        inputs = keras.Input((height, 17, 2))
        model = keras.Model(inputs, max_pool_ceil(inputs, name="pool"))
        static_layer_types |= {type(layer) for layer in model.layers[1:]}
    assert static_layer_types == {layers.MaxPooling2D}


@pytest.mark.parametrize("pool, stride", [(2, 2), (3, 1), (3, 3), (2, 3), (1, 2), (5, 3), (4, 2), ((3, 2), (2, 3))])
def test_ceil_max_pool_any_kernel_and_stride(pool, stride, rng):
    layer = CeilMaxPool2D(pool, stride)
    pool, stride = layer.pool_size, layer.strides
    for height, width in zip(SIZES, reversed(SIZES), strict=True):
        x = random_input(rng, height, width)
        np.testing.assert_array_equal(
            layer(x).numpy(), numpy_max_pool_ceil(x, pool, stride), err_msg=f"{height}x{width}"
        )


def test_ceil_max_pool_equals_pytorch(rng):
    torch = pytest.importorskip("torch")
    for pool, stride in [(3, 2), (2, 2), (5, 3), (2, 3)]:
        layer = CeilMaxPool2D(pool, stride)
        for size in SIZES:
            x = random_input(rng, size, 47 - size)
            reference = torch.nn.functional.max_pool2d(
                torch.from_numpy(x).permute(0, 3, 1, 2), pool, stride, ceil_mode=True
            ).permute(0, 2, 3, 1)
            np.testing.assert_array_equal(layer(x).numpy(), reference.numpy(), err_msg=f"{pool}/{stride} {size}")


def test_unknown_size_uses_ceil_max_pool(rng):
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, max_pool_ceil(inputs, name="pool"))
    assert [type(layer) for layer in model.layers[1:]] == [CeilMaxPool2D]
    assert model.output_shape == (None, None, None, 2)
    for height, width in [(7, 7), (8, 13), (40, 9)]:
        x = random_input(rng, height, width)
        np.testing.assert_array_equal(np.asarray(model(x)), numpy_max_pool_ceil(x))
    # one axis unknown: the known one still gives its static size
    assert max_pool_ceil(keras.Input((13, None, 2)), name="p").shape == (None, 6, None, 2)


def test_static_size_without_standard_padding_uses_ceil_max_pool(rng):
    # pool 5, stride 3 on 12: ceil mode needs 2 extra rows at the end, "same" pads 1 at the top
    inputs = keras.Input((12, 12, 2))
    model = keras.Model(inputs, max_pool_ceil(inputs, 5, 3, name="pool"))
    assert [type(layer) for layer in model.layers[1:]] == [CeilMaxPool2D]
    x = random_input(rng, 12, 12)
    np.testing.assert_array_equal(np.asarray(model(x)), numpy_max_pool_ceil(x, (5, 5), (3, 3)))


def test_lowest_value_padding_in_other_dtypes():
    for dtype, policy in [("float16", "mixed_float16"), ("bfloat16", "mixed_bfloat16"), ("int32", None)]:
        x = keras.ops.cast(keras.ops.reshape(keras.ops.arange(-81, 0), (1, 9, 9, 1)), dtype)
        out = CeilMaxPool2D(3, 2, dtype=policy)(x)
        assert keras.backend.standardize_dtype(out.dtype) == dtype
        expected = numpy_max_pool_ceil(np.arange(-81, 0, dtype="float32").reshape(1, 9, 9, 1))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")), expected)


def test_keras_file_round_trip_and_twin(tmp_path, rng):
    from keras_lightnets.deploy import to_tf_keras

    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, CeilMaxPool2D((3, 2), (2, 2), name="pool")(inputs))
    model.save(tmp_path / "pool.keras")
    loaded = keras.saving.load_model(tmp_path / "pool.keras")
    assert isinstance(loaded.get_layer("pool"), CeilMaxPool2D)
    assert loaded.get_layer("pool").get_config() == model.get_layer("pool").get_config()
    twin = to_tf_keras(model)
    for height, width in [(7, 8), (9, 9), (24, 31)]:
        x = random_input(rng, height, width)
        expected = numpy_max_pool_ceil(x, (3, 2), (2, 2))
        np.testing.assert_array_equal(np.asarray(loaded(x)), expected)
        np.testing.assert_array_equal(twin(x).numpy(), expected)


def test_twin_equals_ceil_max_pool_for_every_size(rng):
    from keras_lightnets.deploy.twin_layers import TwinCeilMaxPool2D

    for pool, stride in [(3, 2), (2, 3)]:
        layer, twin = CeilMaxPool2D(pool, stride), TwinCeilMaxPool2D(pool, stride)
        for height, width in SIZE_PAIRS:
            x = random_input(rng, height, width)
            np.testing.assert_array_equal(twin(x).numpy(), layer(x).numpy(), err_msg=f"{height}x{width}")


def test_bad_arguments():
    with pytest.raises(ValueError, match="pool_size"):
        CeilMaxPool2D(0)
    with pytest.raises(ValueError, match="strides"):
        CeilMaxPool2D(3, (2, 2, 2))


@pytest.mark.slow
def test_qat_int8_file_pads_then_pools_in_integers(tmp_path, rng):
    # Output range = input range (NoOpQuantizeConfig): the lowest-value padding quantizes to the
    # int8 minimum, the file is PADV2 + MAX_POOL_2D in int8 and agrees with the QAT model.
    from keras_lightnets.deploy import export_tflite, inspect_tflite, predict_tflite, quantize_aware

    inputs = keras.Input((15, 15, 3))
    x = layers.Conv2D(8, 3, name="conv")(inputs)  # 13 x 13, negative values: no ReLU
    x = CeilMaxPool2D(3, 2, name="pool")(x)
    outputs = layers.Dense(4, name="fc")(layers.GlobalAveragePooling2D()(x))
    qat = quantize_aware(keras.Model(inputs, outputs))
    images = rng.random((32, 15, 15, 3), dtype=np.float32)
    qat(images, training=True)  # learn the activation ranges
    exported = export_tflite(qat, tmp_path / "pool.tflite", quantization="int8")
    summary = inspect_tflite(exported.path)
    assert {"PADV2", "MAX_POOL_2D"} <= set(summary.operators) and summary.float_tensors_inside == ()
    expected = qat(images[:8], training=False).numpy()
    np.testing.assert_allclose(predict_tflite(exported.path, images[:8]), expected, atol=0.02 * np.abs(expected).max())
