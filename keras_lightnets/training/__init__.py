"""Training: recipes, the training plan, distribution strategies, resumable runs, evaluation.

    from keras_lightnets.training import fit, evaluate
    result = fit("squeezenet1_1", epochs=5, output_dir="runs/squeezenet")   # bundled digits
    evaluate("runs/squeezenet")                                             # {'loss', 'accuracy', ...}

Data flows one way: registry -> models -> training; model code never imports this package.
"""

from keras_lightnets.training.callbacks import NonFiniteLossError, TrainingInterrupted
from keras_lightnets.training.evaluate import evaluate
from keras_lightnets.training.fit import FitResult, fit
from keras_lightnets.training.optimizers import build_optimizer, build_schedule
from keras_lightnets.training.plan import TrainingPlan, make_plan
from keras_lightnets.training.precise_bn import recalibrate_batchnorm
from keras_lightnets.training.recipes import Recipe, get_recipe, list_recipes, scaled_learning_rate
from keras_lightnets.training.run_dir import CheckpointError, RunDir, RunMismatchError
from keras_lightnets.training.strategy import get_strategy

__all__ = [
    "CheckpointError",
    "FitResult",
    "NonFiniteLossError",
    "Recipe",
    "RunDir",
    "RunMismatchError",
    "TrainingInterrupted",
    "TrainingPlan",
    "build_optimizer",
    "build_schedule",
    "evaluate",
    "fit",
    "get_recipe",
    "get_strategy",
    "list_recipes",
    "make_plan",
    "recalibrate_batchnorm",
    "scaled_learning_rate",
]
