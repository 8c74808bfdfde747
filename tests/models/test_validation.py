"""Bad arguments raise a clear error naming the argument and what is allowed, before any layer
is built: the fixture makes building any Keras layer fail, so a check that comes too late fails
the test. The keras.applications arguments are checked for every family the registry finds."""

import keras
import pytest

import keras_lightnets as kl


@pytest.fixture(autouse=True)
def no_layer_may_be_built(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a layer was built before the arguments were checked")

    monkeypatch.setattr(keras.layers.Layer, "__init__", fail)


# Bad keras.applications arguments, given to every family's constructor.
COMMON_CASES = [
    ({"pooling": "mean"}, ValueError, "`pooling` must be one of (None, 'avg', 'max')"),
    ({"classes": 0}, ValueError, "`classes` must be an integer > 0"),
    ({"classes": 10.0}, TypeError, "`classes` must be an integer"),
    ({"include_top": "yes"}, TypeError, "`include_top` must be True or False"),
    ({"features_only": 1}, TypeError, "`features_only` must be True or False"),
    ({"include_preprocessing": "no"}, TypeError, "`include_preprocessing` must be True or False"),
    ({"classifier_activation": "softmaxx"}, ValueError, "`classifier_activation` must be None"),
    # 32 pixels for most families (checked exactly for ReXNet below), 63 for AlexNet's 11x11/4 stem
    ({"input_shape": (16, 16, 3)}, ValueError, "input height must be at least"),
    ({"input_shape": (224, 224)}, ValueError, "`input_shape` must be (height, width, channels)"),
    ({"input_shape": (224, 224, None)}, ValueError, "known number of channels"),
    # A tag no variant publishes: named before any download or layer (families with weights list theirs).
    ({"weights": "no_such_tag"}, ValueError, "`weights='no_such_tag'`"),
    ({"weights": 3}, TypeError, "`weights` must be None, 'imagenet', a published tag or the path"),
    ({"weights": "model.pt"}, ValueError, "'.weights.h5' / '.keras' file"),
    ({"name": "a/b"}, ValueError, "`name` must be a non-empty string without '/'"),
    ({"name": ""}, ValueError, "`name` must be a non-empty string"),
    ({"name": 3}, TypeError, "`name` must be a string"),
]
CONSTRUCTORS = {family: kl.get_family(family).constructor for family in kl.list_families()}
# Families whose constructor has required architecture arguments and no registered variant to
# borrow them from (AnyNet: any point of the design space, none published).
VALID_ARCHITECTURES = {
    "anynet": {
        "stem_width": 32,
        "depths": (1, 1, 4, 7),
        "widths": (24, 56, 152, 368),
        "strides": (2, 2, 2, 2),
        "bottleneck_ratios": (1, 1, 1, 1),
        "group_widths": (8, 8, 8, 8),
    },
}


def valid_architecture(family):
    """Arguments that build a model of ``family``: its first variant's, or the table above."""
    variants = kl.get_family(family).variants
    return dict(variants[0].kwargs) if variants else VALID_ARCHITECTURES[family]


@pytest.mark.parametrize("family", sorted(CONSTRUCTORS))
@pytest.mark.parametrize("kwargs, error, message", COMMON_CASES, ids=[str(k) for k, _, _ in COMMON_CASES])
def test_every_family_checks_the_application_arguments_first(family, kwargs, error, message):
    with pytest.raises(error) as raised:
        CONSTRUCTORS[family](**{**valid_architecture(family), **kwargs})
    assert message in str(raised.value)


ANYNET = VALID_ARCHITECTURES["anynet"]
REGNET = {"w0": 24, "wa": 36.44, "wm": 2.49, "depth": 13, "group_width": 8}
# Issue 11, bad input: stage lists of different lengths, a width its group width does not
# divide, non-positive or non-integer depths, bad RegNet parameters, bad ResNet options.
DESIGN_SPACE_CASES = [
    (kl.AnyNet, {"depths": (1, 1, 4)}, ValueError, "must have one entry per stage, got lengths"),
    (kl.AnyNet, {"strides": (2, 2, 2, 2, 2)}, ValueError, "'strides': 5"),
    (
        kl.AnyNet,
        {"widths": (24, 60, 152, 368)},
        ValueError,
        "`widths[1]`=60 with bottleneck ratio 1 gives a bottleneck of 60 channels, not divisible by "
        "`group_widths[1]`=8; the nearest compatible width is 64",
    ),
    (kl.AnyNet, {"depths": (1, 0, 4, 7)}, ValueError, "`depths[1]` must be an integer >= 1, got 0"),
    (kl.AnyNet, {"depths": (1, 1.5, 4, 7)}, TypeError, "`depths[1]` must be an integer >= 1, got 1.5"),
    (kl.AnyNet, {"depths": 4}, TypeError, "`depths` must be a non-empty list or tuple, one entry per stage, got 4"),
    (kl.AnyNet, {"strides": (2, 3, 2, 2)}, ValueError, "`strides[1]` must be 1 or 2, got 3"),
    (kl.AnyNet, {"bottleneck_ratios": (1, 0, 1, 1)}, ValueError, "`bottleneck_ratios[1]` must be a number > 0, got 0"),
    (kl.AnyNet, {"group_widths": (8, 8, 0, 8)}, ValueError, "`group_widths[2]` must be an integer >= 1, got 0"),
    (kl.AnyNet, {"se_ratio": 2.0}, ValueError, "`se_ratio` must be a number in [0, 1], got 2.0"),
    (kl.AnyNet, {"stem_width": 0}, ValueError, "`stem_width` must be an integer >= 1, got 0"),
    (kl.RegNet, {"depth": 0}, ValueError, "`depth` must be an integer >= 1, got 0"),
    (kl.RegNet, {"depth": 13.0}, TypeError, "`depth` must be an integer >= 1, got 13.0"),
    (kl.RegNet, {"w0": 20}, ValueError, "`w0` must be a multiple of quantum=8, got 20"),
    (kl.RegNet, {"wm": 0.5}, ValueError, "`wm` must be a number > 1, got 0.5"),
    (kl.RegNet, {"group_width": -8}, ValueError, "`group_width` must be an integer >= 1, got -8"),
    (kl.ResNet, {"depth": 20}, ValueError, "`depth` must be one of (18, 34, 50, 101, 152), got 20"),
    (kl.ResNet, {"depth": 18, "groups": 32}, ValueError, "`groups` and `width_per_group` apply to bottleneck ResNets"),
    (
        kl.ResNet,
        {"depth": 34, "version": "1"},
        ValueError,
        "`version='1'` (keras.applications' layout) exists for depth 50, 101 and 152",
    ),
    (kl.ResNet, {"version": 1}, ValueError, "`version` must be one of ('1.5', '1'), got 1"),
    (kl.ResNet, {"groups": 0}, ValueError, "`groups` must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize(
    "builder, kwargs, error, message",
    DESIGN_SPACE_CASES,
    ids=[f"{b.__name__}-{k}" for b, k, _, _ in DESIGN_SPACE_CASES],
)
def test_bad_design_space_argument_is_named(builder, kwargs, error, message):
    base = {kl.AnyNet: ANYNET, kl.RegNet: REGNET, kl.ResNet: {}}[builder]
    with pytest.raises(error) as raised:
        builder(**{**base, **kwargs})
    assert message in str(raised.value)


CASES = [
    # (builder, kwargs, error type, text the message must contain)
    (kl.ReXNet, {"width": 0}, ValueError, "`width` must be a number > 0"),
    (kl.ReXNet, {"width": -1.0}, ValueError, "`width` must be a number > 0"),
    (kl.ReXNet, {"width": "wide"}, TypeError, "`width` must be a number"),
    (kl.ReXNet, {"width": 1e-4}, ValueError, "`width` must be at least"),
    (kl.ReXNetLite, {"width": 0}, ValueError, "`width` must be a number > 0"),
    (kl.MobileNet, {"alpha": 0}, ValueError, "`alpha` must be a number > 0"),
    (kl.MobileNet, {"alpha": 0.01}, ValueError, "`alpha` must be at least"),
    (kl.MobileNet, {"depth_multiplier": 1.5}, TypeError, "`depth_multiplier` must be an integer"),
    (kl.MobileNet, {"padding": "torch"}, ValueError, "`padding` must be one of ('keras', 'symmetric')"),
    (kl.MobileNetV2, {"alpha": -0.5}, ValueError, "`alpha` must be a number > 0"),
    (kl.MobileNetV2, {"alpha": True}, TypeError, "`alpha` must be a number"),
    (kl.SqueezeNet, {"version": "1.2"}, ValueError, "`version` must be one of ('1.0', '1.1')"),
    (kl.SqueezeNet, {"version": 1.0}, ValueError, "`version` must be one of"),
    (kl.SqueezeNet, {"bypass": "full"}, ValueError, "`bypass` must be one of (None, 'simple', 'complex')"),
    (kl.MobileNetV2, {"classes": 0}, ValueError, "`classes` must be an integer > 0"),
    (kl.MobileNetV2, {"classes": 10.0}, TypeError, "`classes` must be an integer"),
    (kl.ReXNet, {"input_shape": (16, 16, 3)}, ValueError, "input height must be at least 32 pixels"),
    (kl.SqueezeNet, {"input_shape": (224, 31, 3)}, ValueError, "input width must be at least 32 pixels"),
    (kl.ReXNet, {"input_shape": (224, 224)}, ValueError, "`input_shape` must be (height, width, channels)"),
    (kl.ReXNet, {"input_shape": (1, 224, 224, 3)}, ValueError, "`input_shape` must be (height, width, channels)"),
    (kl.ReXNet, {"input_shape": (224, 224, None)}, ValueError, "known number of channels"),
    (kl.ReXNet, {"input_shape": (224, 224, 0)}, ValueError, "`input_shape` channels must be a positive integer"),
    (kl.ParNet, {"weights": "imagenet"}, ValueError, "`weights='imagenet'`: no published weights"),
    (kl.ReXNet, {"weights": "a1_in1k"}, ValueError, "`weights='a1_in1k'`: 'rexnet_100' publishes 'nav_in1k'"),
    (kl.ReXNet, {"weights": "missing.weights.h5"}, ValueError, "`weights` file does not exist"),
    (kl.ReXNet, {"weights": "model.pt"}, ValueError, "'.weights.h5' / '.keras' file"),
    (kl.ReXNet, {"dropout_rate": 1.0}, ValueError, "`dropout_rate` must be in [0, 1)"),
    (kl.ReXNet, {"drop_path_rate": -0.1}, ValueError, "`drop_path_rate` must be in [0, 1)"),
    (kl.ReXNet, {"classifier_activation": "softmaxx"}, ValueError, "`classifier_activation` must be None"),
]


@pytest.mark.parametrize("builder, kwargs, error, message", CASES, ids=[f"{b.__name__}-{k}" for b, k, _, _ in CASES])
def test_bad_argument_is_named(builder, kwargs, error, message):
    with pytest.raises(error) as raised:
        builder(**kwargs)
    assert message in str(raised.value)


def test_create_model_unknown_name_suggests_closest():
    with pytest.raises(ValueError) as raised:
        kl.create_model("rexnet100")
    assert "unknown model 'rexnet100'" in str(raised.value)
    assert "rexnet_100" in str(raised.value)


def test_create_model_rejects_unknown_override():
    with pytest.raises(TypeError, match="alpha"):
        kl.create_model("rexnet_100", alpha=1.0)
