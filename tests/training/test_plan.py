"""One training plan for fit and QAT fine-tuning (issue 26): the same image size, batch check and
settings for both but for QAT's documented overrides; GoogLeNet trains with its auxiliary classifiers.

QAT tests stop right after what they check (a spy raises :class:`_StopError`), so that no QAT train
step is traced: that alone costs 15-40 s on 2 cores.
"""

import dataclasses
import importlib
import json

import keras
import pytest
from training_helpers import MODEL
from training_probe import SeesTheTrainedModel

import keras_lightnets as kl
from keras_lightnets.deploy import fit_quantize_aware, quantize_aware
from keras_lightnets.deploy import qat_fit as qat_fit_module
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.training import fit, get_recipe, inputs
from keras_lightnets.training.plan import QAT_RECIPE_OVERRIDES, TrainingPlan, make_plan

# The module, not the function keras_lightnets.training re-exports under the same name.
fit_module = importlib.import_module("keras_lightnets.training.fit")


class _StopError(Exception):
    """Raised by the spies once they have seen what a test checks."""


def _small_cnn(size=32):
    """Conv-BN-ReLU, pooling, logits: quick to quantize. ``size=None`` takes any image size."""
    inputs_ = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv0")(inputs_)
    x = keras.layers.BatchNormalization(name="bn0")(x)
    x = keras.layers.ReLU(6.0, name="relu0")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs_, keras.layers.Dense(10, name="logits")(x), name="small_cnn")


def _stop_at(monkeypatch, module, name, seen):
    """Replaces ``module.name`` by a spy that records its call (and what the real one returns) and stops."""
    real = getattr(module, name)

    def spy(*args, **kwargs):
        seen.append((args, kwargs, real(*args, **kwargs) if name == "make_plan" else None))
        raise _StopError

    monkeypatch.setattr(module, name, spy)


def test_qat_trains_at_the_recipes_image_size(monkeypatch, data_dir):
    # Before: fit honoured a recipe's image_size, QAT fine-tuning fell back to the dataset's 32 px.
    recipe = dataclasses.replace(get_recipe(None, "default"), image_size=48)
    seen = []
    _stop_at(monkeypatch, inputs, "train_dataset", seen)
    with pytest.raises(_StopError):
        fit_quantize_aware(quantize_aware(_small_cnn(size=None)), recipe=recipe, data_dir=data_dir, verbose=0)
    with pytest.raises(_StopError):
        fit(_small_cnn(size=None), recipe=recipe, data_dir=data_dir, validation_split=None, verbose=0)
    assert [kwargs["image_size"] for _, kwargs, _ in seen] == [48, 48]
    assert [kwargs["preset"] for _, kwargs, _ in seen] == ["cifar", "cifar"]  # 48 px: the small-image preset


def test_qat_refuses_a_batch_larger_than_the_training_split_as_fit_does(tmp_path, data_dir):
    # Before: QAT trained steps_per_epoch=max(1, 1442 // 5000) = 1 step on repeated images.
    with pytest.raises(ValueError) as from_fit:
        fit(_small_cnn(), batch_size=5000, output_dir=tmp_path / "run", data_dir=data_dir, verbose=0)
    with pytest.raises(ValueError) as from_qat:
        fit_quantize_aware(
            quantize_aware(_small_cnn()),
            batch_size=5000,
            epochs=1,
            steps_per_epoch=1,
            validation_split=None,
            calibration_steps=0,
            precise_bn_steps=0,
            run_eagerly=True,
            data_dir=data_dir,
            verbose=0,
        )
    expected = "`batch_size` 5000 is larger than the 1442 training examples of lightnets_digits: use at most 1442"
    assert str(from_qat.value) == str(from_fit.value) == expected
    assert not (tmp_path / "run").exists()


def test_fit_and_qat_make_the_same_plan_but_for_the_documented_overrides(monkeypatch, tmp_path, data_dir):
    model = kl.create_model(MODEL, input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    recipe = dataclasses.replace(get_recipe("mobilenetv2", "default"), ema=0.999)  # warm-up 1 epoch, EMA
    common = {"recipe": recipe, "epochs": 3, "batch_size": 16, "seed": 0, "data_dir": data_dir, "verbose": 0}
    seen = []
    _stop_at(monkeypatch, fit_module, "make_plan", seen)
    _stop_at(monkeypatch, qat_fit_module, "make_plan", seen)
    with pytest.raises(_StopError):
        fit(model, output_dir=tmp_path / "run", **common)
    with pytest.raises(_StopError):
        fit_quantize_aware(quantize_aware(model), learning_rate_scale=0.1, **common)
    (_, _, fit_plan), (_, _, qat_plan) = seen
    assert isinstance(fit_plan, TrainingPlan) and isinstance(qat_plan, TrainingPlan)

    differing = {
        f.name for f in dataclasses.fields(TrainingPlan) if getattr(fit_plan, f.name) != getattr(qat_plan, f.name)
    }
    assert differing == {"recipe", "learning_rate", "learning_rate_scale"}
    # The recipe differs by QAT_RECIPE_OVERRIDES only: no warm-up, no EMA; the rate is the fit's x 0.1.
    assert QAT_RECIPE_OVERRIDES == {"warmup_epochs": 0.0, "ema": 0}
    assert dataclasses.replace(fit_plan.recipe, warmup_epochs=0.0, ema=None) == qat_plan.recipe
    assert (fit_plan.recipe.warmup_epochs, fit_plan.recipe.ema) == (1.0, 0.999)
    assert qat_plan.learning_rate == pytest.approx(0.1 * fit_plan.learning_rate)
    assert fit_plan.learning_rate == pytest.approx(recipe.learning_rate * 16 / recipe.batch_size)
    # The facts both share: the card's family and preprocessing, 32 px, 90 steps of 16, float32.
    assert (qat_plan.family, qat_plan.image_size, qat_plan.preset, qat_plan.epochs) == ("mobilenetv2", 32, "cifar", 3)
    assert (qat_plan.batch_size, qat_plan.steps_per_epoch, qat_plan.dtype_policy) == (16, 1442 // 16, "float32")
    assert qat_plan.preprocessing == resolve_preprocessing(model) == resolve_preprocessing(MODEL)
    assert qat_plan.preprocessing.mean == (0.5, 0.5, 0.5) and not qat_plan.preprocessing.in_graph
    differing = {k for k, v in fit_plan.hyperparameters.items() if qat_plan.hyperparameters[k] != v}
    assert differing == {"learning_rate", "warmup_epochs", "ema"}


def test_a_plan_checks_its_arguments_before_any_work():
    with pytest.raises(TypeError, match=r"`recipe_overrides` may replace .*; got dropout"):
        make_plan(MODEL, recipe_overrides={"dropout": 0.1})
    with pytest.raises(ValueError, match=r"`learning_rate_scale` must be"):
        make_plan(MODEL, learning_rate_scale=0)
    with pytest.raises(ValueError, match=r"`learning_rate` must be a number > 0, got -1"):
        make_plan(MODEL, learning_rate=-1)
    with pytest.raises(TypeError, match=r"`model_or_name` must be a registered model name or a keras.Model, got 3"):
        make_plan(3)


def test_googlenets_recipe_builds_it_with_auxiliary_classifiers_except_for_transfer_learning(data_dir):
    plan = make_plan("googlenet", data_dir=data_dir)
    assert plan.recipe.auxiliary_loss_weight == 0.3 and plan.auxiliary_loss_weight == 0.3
    assert plan.build_overrides() == {"aux_logits": True} and plan.hyperparameters["auxiliary_loss_weight"] == 0.3
    assert plan.image_size == 96  # googlenet_original's auxiliary pools need at least 79 px
    assert make_plan("googlenet_original", data_dir=data_dir).build_overrides() == {"aux_logits": True}
    # New auxiliary heads on a (partly) frozen pretrained body would only push random gradients into it.
    transfer = make_plan("googlenet", weights="imagenet", transfer="head", data_dir=data_dir)
    assert transfer.auxiliary_loss_weight is None and transfer.build_overrides() == {}
    assert make_plan(MODEL, data_dir=data_dir).auxiliary_loss_weight is None


def test_fit_googlenet_trains_its_auxiliary_classifiers_and_saves_the_inference_model(tmp_path, data_dir):
    # Before: fit("googlenet") built it without aux_logits and trained the main classifier alone.
    probe = SeesTheTrainedModel()
    run = tmp_path / "run"
    result = fit(
        "googlenet",
        image_size=32,  # torchvision's layout pools its auxiliary classifiers adaptively: any size
        epochs=1,
        batch_size=8,
        steps_per_epoch=1,
        validation_split=None,
        seed=0,
        verbose=0,
        output_dir=run,
        data_dir=data_dir,
        callbacks=[probe],
    )
    assert len(probe.outputs) == 3 and probe.loss_weights == [1.0, 0.3, 0.3]
    assert json.loads((run / "run.json").read_text())["hyperparameters"]["auxiliary_loss_weight"] == 0.3
    for saved in (
        result.model,
        keras.saving.load_model(run / "final.keras"),
        keras.saving.load_model(run / "best.keras"),
    ):
        assert len(saved.outputs) == 1 and saved.output_shape == (None, 10)
