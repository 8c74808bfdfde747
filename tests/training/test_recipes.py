"""Recipes as data: published numbers, lookup errors, learning-rate scaling, schedules, weight decay."""

import dataclasses
import math

import keras
import numpy as np
import pytest

from keras_lightnets.data.pipeline import BUNDLED_DATASET
from keras_lightnets.training.inputs import default_image_size
from keras_lightnets.training.optimizers import build_optimizer, build_schedule
from keras_lightnets.training.recipes import (
    Recipe,
    effective_weight_decay,
    get_recipe,
    list_recipes,
    scaled_learning_rate,
)


@pytest.mark.parametrize(
    ("family", "numbers"),
    [
        (
            "rexnet",
            {"optimizer": "sgd", "nesterov": True, "momentum": 0.9, "learning_rate": 0.5, "batch_size": 512,
             "epochs": 400, "weight_decay": 1e-5, "schedule": "cosine", "label_smoothing": 0.1, "dropout_rate": 0.2},
        ),
        (
            "mobilenetv2",
            {"optimizer": "rmsprop", "rho": 0.9, "momentum": 0.9, "learning_rate": 0.045, "batch_size": 96,
             "weight_decay": 4e-5, "schedule": "exponential", "decay_rate": 0.98, "decay_epochs": 1.0},
        ),
        (
            "mobilenetv1",
            {"optimizer": "rmsprop", "rho": 0.9, "epsilon": 1.0, "learning_rate": 0.045, "schedule": "exponential",
             "decay_rate": 0.94, "decay_epochs": 2.0, "clip_norm": 2.0, "decay_depthwise": False},
        ),
        (
            "squeezenet",
            {"optimizer": "sgd", "nesterov": False, "momentum": 0.9, "learning_rate": 0.04, "batch_size": 512,
             "weight_decay": 2e-4, "schedule": "linear", "epochs": 68},
        ),
        (
            "resnet",
            {"optimizer": "sgd", "nesterov": False, "momentum": 0.9, "learning_rate": 0.1, "batch_size": 256,
             "epochs": 90, "weight_decay": 1e-4, "schedule": "exponential", "decay_rate": 0.1, "decay_epochs": 30.0},
        ),
        (
            "regnet",
            {"optimizer": "sgd", "nesterov": True, "momentum": 0.9, "learning_rate": 0.8, "batch_size": 1024,
             "epochs": 100, "weight_decay": 5e-5, "schedule": "cosine", "warmup_epochs": 5.0, "label_smoothing": 0.0},
        ),
        (
            "efficientnet",
            {"optimizer": "rmsprop", "rho": 0.9, "momentum": 0.9, "epsilon": 1e-3, "learning_rate": 0.256,
             "batch_size": 4096, "weight_decay": 1e-5, "schedule": "exponential", "decay_rate": 0.97,
             "decay_epochs": 2.4, "label_smoothing": 0.1, "ema": 0.9999, "epochs": 350},
        ),
        (
            "mnasnet",
            {"optimizer": "rmsprop", "rho": 0.9, "momentum": 0.9, "learning_rate": 0.256, "batch_size": 4096,
             "weight_decay": 1e-5, "schedule": "exponential", "decay_rate": 0.97, "decay_epochs": 2.4,
             "dropout_rate": 0.2, "label_smoothing": 0.1},
        ),
        (
            "parnet",
            {"optimizer": "sgd", "nesterov": True, "momentum": 0.9, "learning_rate": 0.001, "batch_size": 1024,
             "epochs": 120, "weight_decay": 1e-4, "schedule": "cosine", "warmup_epochs": 0.0, "label_smoothing": 0.1,
             "ema": 0.9999, "randaugment": True},
        ),
        (
            "convnext",
            {"optimizer": "adamw", "learning_rate": 4e-3, "batch_size": 4096, "epochs": 300, "weight_decay": 0.05,
             "schedule": "cosine", "warmup_epochs": 20.0, "label_smoothing": 0.1, "randaugment": True},
        ),
        (
            "inception_resnet_v2",
            {"optimizer": "rmsprop", "rho": 0.9, "epsilon": 1.0, "learning_rate": 0.045, "schedule": "exponential",
             "decay_rate": 0.94, "decay_epochs": 2.0, "image_size": 299},
        ),
        (
            "nasnet",
            {"optimizer": "rmsprop", "learning_rate": 2.0, "batch_size": 1600, "epochs": 312, "weight_decay": 4e-5,
             "schedule": "exponential", "decay_rate": 0.97, "decay_epochs": 2.4, "label_smoothing": 0.1,
             "clip_norm": 10.0, "dropout_rate": 0.5, "image_size": 224},
        ),
    ],
)  # fmt: skip
def test_paper_recipes_hold_the_published_numbers(family, numbers):
    recipe = get_recipe(family, "paper")
    assert {key: getattr(recipe, key) for key in numbers} == numbers
    assert recipe.family == family and recipe.name == "paper"
    assert len(recipe.source) > 40  # names where the numbers come from


def test_every_family_has_a_default_and_unknown_recipes_list_the_available_ones():
    assert get_recipe("rexnet", "default") is get_recipe(None, "default")  # the "*" recipe
    assert list_recipes("rexnet") == ["default", "paper"]
    with pytest.raises(ValueError, match=r"unknown recipe 'papr' for model family 'rexnet'; available: default, paper"):
        get_recipe("rexnet", "papr")


def test_squeezenet_default_recipe_trains_at_64_px_without_label_smoothing():
    # Its ReLU classifier over a 1x1 map (32 px) loses classes for good; see recipes.py.
    squeezenet, shared = get_recipe("squeezenet", "default"), get_recipe(None, "default")
    assert (squeezenet.image_size, squeezenet.learning_rate, squeezenet.label_smoothing) == (64, 5e-4, 0.0)
    assert squeezenet.epsilon == 1e-3 and shared.epsilon == 1e-7
    assert shared.image_size is None
    assert (squeezenet.optimizer, squeezenet.schedule, squeezenet.batch_size) == ("adamw", "cosine", 32)


@pytest.mark.parametrize("family", ["regnet", "anynet", "mobileone"])
def test_regnet_default_recipe_is_the_shared_one_at_64_px(family):
    # regnetx_002 on the digits, seed 0, 5 epochs: 25.9 % at 32 px, 85.4 % at 64 px; mobileone_s1: 64.8 % after 30
    # epochs at 32 px, 66.8 % after 5 at 64 px (recipes.py).
    recipe, shared = get_recipe(family, "default"), get_recipe(None, "default")
    assert recipe.image_size == 64 and recipe.family == family
    assert dataclasses.replace(recipe, family="*", image_size=None, source="", notes="") == dataclasses.replace(
        shared, source="", notes=""
    )
    assert default_image_size(BUNDLED_DATASET, recipe=recipe) == 64
    assert default_image_size(BUNDLED_DATASET, recipe=get_recipe("resnet", "default")) == 32  # ResNets learn at 32


def test_recipe_fields_are_checked():
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        get_recipe("rexnet", "paper").with_overrides(optimizer="adam")
    with pytest.raises(ValueError, match="warm-up is only available with the cosine schedule"):
        get_recipe("squeezenet", "paper").with_overrides(warmup_epochs=1.0)
    with pytest.raises(TypeError, match="unknown recipe fields"):
        get_recipe("rexnet", "paper").with_overrides(lr=0.1)
    for bad, error in ((0, ValueError), (32.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="`image_size` must be an integer >= 1"):
            get_recipe("rexnet", "default").with_overrides(image_size=bad)


def test_learning_rate_scales_linearly_with_the_global_batch():
    rexnet = get_recipe("rexnet", "paper")
    assert scaled_learning_rate(rexnet, 512) == 0.5
    assert scaled_learning_rate(rexnet, 128) == pytest.approx(0.125)
    assert scaled_learning_rate(get_recipe("squeezenet", "paper"), 1024) == pytest.approx(0.08)
    # pycls's RegNetX-3.2GF config trains with 0.4 at batch 512: the same rate per image as 0.8 at 1024.
    assert scaled_learning_rate(get_recipe("regnet", "paper"), 512) == pytest.approx(0.4)


def test_l2_weight_decay_becomes_decoupled_through_the_momentum():
    assert effective_weight_decay(get_recipe("rexnet", "paper")) == pytest.approx(1e-5 / (1 - 0.9))
    assert effective_weight_decay(get_recipe("mobilenetv2", "paper")) == 4e-5  # RMSprop: as published
    assert effective_weight_decay(get_recipe("rexnet", "default")) == 0.05  # AdamW: decoupled already


def _values(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_cosine_schedule_with_warmup_values():
    recipe = get_recipe("rexnet", "default")  # warm-up 1 epoch, cosine to 0
    schedule = build_schedule(recipe, 0.002, steps_per_epoch=10, epochs=5)  # 50 steps, 10 of warm-up
    start, mid_warmup, end_warmup, mid_decay, end = _values(schedule, [0, 5, 10, 30, 50])
    assert start == 0.0
    assert mid_warmup == pytest.approx(0.001, rel=1e-6)
    assert end_warmup == pytest.approx(0.002, rel=1e-6)
    assert mid_decay == pytest.approx(0.002 * (1 + math.cos(math.pi * 20 / 40)) / 2, rel=1e-6)
    assert end == pytest.approx(0.0, abs=1e-12)


def test_exponential_and_linear_schedules():
    mobilenetv2 = build_schedule(get_recipe("mobilenetv2", "paper"), 0.045, steps_per_epoch=100, epochs=300)
    assert _values(mobilenetv2, [0, 99, 100, 250]) == pytest.approx([0.045, 0.045, 0.045 * 0.98, 0.045 * 0.98**2])
    squeezenet = build_schedule(get_recipe("squeezenet", "paper"), 0.04, steps_per_epoch=10, epochs=68)
    assert _values(squeezenet, [0, 340, 680]) == pytest.approx([0.04, 0.02, 0.0], abs=1e-9)
    # torchvision's StepLR(step_size=30, gamma=0.1) for ResNet: 0.1 until epoch 30, 0.01 until 60, then 0.001.
    resnet = build_schedule(get_recipe("resnet", "paper"), 0.1, steps_per_epoch=10, epochs=90)
    assert _values(resnet, [0, 299, 300, 599, 600, 899]) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_weight_decay_spares_batchnorm_biases_and_depthwise_kernels_when_asked():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.Dense(3, name="dense")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    recipe = Recipe(
        family="test", name="wd", source="test", optimizer="sgd", learning_rate=1.0, batch_size=1, epochs=1,
        momentum=0.0, weight_decay=0.1, decay_depthwise=False,
    )  # fmt: skip
    optimizer = build_optimizer(recipe, 1.0, model)
    for variable in model.trainable_variables:  # all ones, so that any decay shows
        variable.assign(np.ones(variable.shape))
    optimizer.apply_gradients([(keras.ops.zeros(v.shape), v) for v in model.trainable_variables])
    after = {v.path: np.array(v) for v in model.trainable_variables}
    assert {path for path, value in after.items() if not np.all(value == 1.0)} == {"dense/kernel"}
    np.testing.assert_allclose(after["dense/kernel"], 1.0 - 1.0 * 0.1, rtol=1e-6)  # w -= lr * wd * w


def test_efficientnet_default_recipe_trains_at_64_px_at_five_times_the_rate():
    # Its fan-out initialization learns slowly under Adam at the shared 2e-3; see recipes.py.
    efficientnet, shared = get_recipe("efficientnet", "default"), get_recipe(None, "default")
    assert (efficientnet.image_size, efficientnet.learning_rate) == (64, 5 * shared.learning_rate)
    assert efficientnet.epochs == shared.epochs and efficientnet.optimizer == shared.optimizer
    assert get_recipe("mnasnet", "default") is shared  # MnasNet learns the digits at 32 px as it is


def test_residual_attention_cifar_recipe_holds_the_papers_numbers():
    recipe = get_recipe("resattnet", "paper_cifar")
    assert (recipe.optimizer, recipe.nesterov, recipe.momentum, recipe.learning_rate) == ("sgd", True, 0.9, 0.1)
    assert (recipe.batch_size, recipe.weight_decay, recipe.weight_decay_mode) == (64, 1e-4, "l2")
    # iterations to epochs on CIFAR's 50,000 images: 160k in all, the first division at 64k
    assert recipe.epochs == round(160_000 * 64 / 50_000)
    assert recipe.schedule == "multistep" and recipe.milestones == (64_000 * 64 / 50_000, 96_000 * 64 / 50_000)
    assert "section 4.1" in recipe.source and list_recipes("resattnet") == ["default", "paper_cifar"]


def test_multistep_schedule_divides_at_each_milestone():
    # PyramidNet's CIFAR recipe: lr * 0.1 at epochs 150 and 225 of 300 (the reference's adjust_learning_rate).
    recipe = get_recipe("pyramidnet", "paper")
    assert (recipe.schedule, recipe.milestones, recipe.decay_rate) == ("multistep", (150.0, 225.0), 0.1)
    schedule = build_schedule(recipe, 0.1, steps_per_epoch=10, epochs=300)
    assert _values(schedule, [0, 1499, 1500, 2249, 2250, 2999]) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    tf_keras_schedule = build_schedule(recipe, 0.1, steps_per_epoch=10, epochs=300, keras_module=__import__("tf_keras"))
    assert float(tf_keras_schedule(2250)) == pytest.approx(0.001)  # QAT trains with the same schedule
    with pytest.raises(ValueError, match="the multistep schedule needs increasing `milestones`"):
        dataclasses.replace(recipe, milestones=(225.0, 150.0))


def test_googlenet_default_recipe_trains_the_auxiliary_classifiers_at_the_papers_weight():
    # The paper (section 5) adds each auxiliary classifier's loss weighted 0.3.
    googlenet, shared = get_recipe("googlenet", "default"), get_recipe(None, "default")
    assert googlenet.auxiliary_loss_weight == 0.3 and shared.auxiliary_loss_weight is None
    assert googlenet.image_size == 96  # googlenet_original's 5x5/3 auxiliary pools need inception 4a >= 5x5
    assert dataclasses.replace(
        googlenet, family="*", image_size=None, auxiliary_loss_weight=None, source="", notes=""
    ) == (dataclasses.replace(shared, source="", notes=""))
    for bad, error in ((0, ValueError), (-0.3, ValueError), ("0.3", TypeError)):
        with pytest.raises(error, match="`auxiliary_loss_weight` must be a number > 0"):
            dataclasses.replace(shared, auxiliary_loss_weight=bad)
