"""Training recipes as data: one frozen :class:`Recipe` per (family, name), each with its source.

``get_recipe("rexnet", "paper")`` is the recipe the ReXNet authors published;
``get_recipe(family, "default")`` is a small-data recipe that trains in minutes on the
bundled dataset. Every field is a published number or says in ``notes`` where it is not.

Learning-rate scaling rule: a recipe's ``learning_rate`` belongs to its ``batch_size``
(the global batch of one synchronous update). Training with another global batch ``B``
uses ``learning_rate * B / batch_size`` (Goyal et al. 2017, "linear scaling rule"), see
:func:`scaled_learning_rate`. An explicit ``learning_rate=`` passed to ``fit`` is used as is.

Weight decay: Keras applies it decoupled, ``w -= lr * wd * w`` once per step (AdamW's
rule, also for SGD and RMSprop). Caffe/PyTorch/TF-slim recipes use an L2 penalty
(``weight_decay_mode="l2"``) whose gradient also flows through the momentum buffer, so
for SGD with momentum ``m`` the same shrinkage per step is ``wd / (1 - m)`` in Keras's
decoupled form; :func:`effective_weight_decay` does that conversion. For RMSprop the L2
gradient is divided by the running RMS and has no exact decoupled twin: the coefficient
is used as is (documented approximation). BatchNorm parameters and biases are never
decayed (timm's default and the usual practice); recipes may also spare depthwise kernels.

Auxiliary classifiers: a recipe with ``auxiliary_loss_weight`` trains the model its family builds
with auxiliary classifiers (GoogLeNet's ``aux_logits=True``) and adds each one's loss with that
weight; the saved and exported models drop them.
"""

from dataclasses import asdict, dataclass, fields, replace

from keras_lightnets.checks import check_number, check_positive_int

__all__ = [
    "AUXILIARY_LOSS_WEIGHT",
    "OPTIMIZERS",
    "SCHEDULES",
    "Recipe",
    "effective_weight_decay",
    "get_recipe",
    "list_recipes",
    "scaled_learning_rate",
]

OPTIMIZERS = ("sgd", "rmsprop", "adamw")
SCHEDULES = ("cosine", "exponential", "multistep", "linear", "constant")
# Each auxiliary classifier's share of the loss: GoogLeNet paper (Szegedy et al. 2015), section 5,
# "their loss gets added to the total loss of the network with a discount weight (the losses of the
# auxiliary classifiers were weighted by 0.3)"; torchvision's reference trains with the same.
AUXILIARY_LOSS_WEIGHT = 0.3


@dataclass(frozen=True)
class Recipe:
    """Hyperparameters of one training recipe.

    ``learning_rate`` is the peak rate for a global batch of ``batch_size``. ``schedule``:
    ``"cosine"`` (to 0 over the epochs after warm-up), ``"exponential"`` (multiply by
    ``decay_rate`` every ``decay_epochs``, staircase), ``"multistep"`` (multiply by ``decay_rate``
    at each of the ``milestones`` epochs: PyTorch's ``MultiStepLR``), ``"linear"`` (to 0 at the end, Caffe's
    ``poly`` with power 1) or ``"constant"``. ``warmup_epochs`` ramps the rate linearly from
    0 (cosine only). ``ema`` is the momentum of an exponential moving average of the weights
    (``None``: no EMA). ``clip_norm`` clips the global gradient norm. ``image_size`` is the
    training resolution when ``fit`` is given neither one nor a model with a fixed input size
    (``None``: the dataset's default, 32 px for the bundled digits). ``auxiliary_loss_weight``:
    a model ``fit`` builds gets its auxiliary classifiers (GoogLeNet's ``aux_logits=True``), each
    one's loss weighted so (``None``: built without them).
    """

    family: str
    name: str
    source: str
    optimizer: str
    learning_rate: float
    batch_size: int
    epochs: int
    weight_decay: float = 0.0
    weight_decay_mode: str = "decoupled"  # "decoupled" (AdamW-style) or "l2" (a loss term, Caffe/PyTorch/slim)
    decay_depthwise: bool = True
    momentum: float = 0.9
    nesterov: bool = False
    rho: float = 0.9  # RMSprop's decay of the squared-gradient average
    epsilon: float = 1e-7
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    decay_rate: float = 0.0
    decay_epochs: float = 1.0
    milestones: tuple = ()
    label_smoothing: float = 0.0
    ema: float | None = None
    clip_norm: float | None = None
    randaugment: bool = False
    dropout_rate: float | None = None  # what the authors trained with; the registry's default applies
    image_size: int | None = None
    auxiliary_loss_weight: float | None = None
    notes: str = ""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"`schedule` must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.weight_decay_mode not in ("decoupled", "l2"):
            raise ValueError(f"`weight_decay_mode` must be 'decoupled' or 'l2', got {self.weight_decay_mode!r}")
        if self.schedule == "multistep" and not (
            self.milestones
            and all(a < b for a, b in zip(self.milestones, self.milestones[1:], strict=False))
            and self.milestones[0] > 0
            and 0 < self.decay_rate < 1
        ):
            raise ValueError(
                "the multistep schedule needs increasing `milestones` (epochs > 0) and 0 < `decay_rate` < 1, got "
                f"milestones={self.milestones!r}, decay_rate={self.decay_rate!r}"
            )
        if self.warmup_epochs and self.schedule != "cosine":
            raise ValueError(f"warm-up is only available with the cosine schedule, got schedule={self.schedule!r}")
        for name in ("learning_rate", "batch_size", "epochs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be > 0, got {getattr(self, name)!r}")
        check_positive_int("image_size", self.image_size)
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ValueError(f"`ema` must be None or in (0, 1), got {self.ema!r}")
        if self.auxiliary_loss_weight is not None:
            check_number(self.auxiliary_loss_weight, "auxiliary_loss_weight", minimum=0, exclusive_minimum=True)

    def with_overrides(self, **overrides):
        """A copy with the given fields replaced (``None`` values are ignored)."""
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown recipe fields: {sorted(unknown)}")
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})

    def to_dict(self):
        return asdict(self)


def scaled_learning_rate(recipe, batch_size):
    """The recipe's peak learning rate for a global batch of ``batch_size`` (linear scaling)."""
    return recipe.learning_rate * batch_size / recipe.batch_size


def effective_weight_decay(recipe):
    """The coefficient for Keras's decoupled ``weight_decay=`` that matches the recipe's decay.

    An L2 penalty ``wd/2 * |w|^2`` under SGD with momentum ``m`` shrinks a slowly changing
    weight by ``lr * wd / (1 - m)`` per step once the momentum buffer is in steady state;
    Keras's decoupled decay shrinks it by ``lr * wd_keras``. So ``wd_keras = wd / (1 - m)``.
    Other cases are returned unchanged (see the module docstring).
    """
    if recipe.weight_decay_mode == "l2" and recipe.optimizer == "sgd" and recipe.momentum:
        return recipe.weight_decay / (1.0 - recipe.momentum)
    return recipe.weight_decay


# EfficientNet and MnasNet share the TPU recipe of tensorflow/tpu (RMSprop at 0.016 per 256 images,
# scaled linearly: 0.256 at the papers' batch of 4096).
_TPU_RMSPROP = {
    "optimizer": "rmsprop",
    "rho": 0.9,
    "momentum": 0.9,
    "epsilon": 1e-3,
    "learning_rate": 0.256,
    "batch_size": 4096,
    "epochs": 350,
    "weight_decay": 1e-5,
    "weight_decay_mode": "l2",
    "schedule": "exponential",
    "decay_rate": 0.97,
    "decay_epochs": 2.4,
    "label_smoothing": 0.1,
    "ema": 0.9999,
}
_TPU_NOTES = (
    "The TPU reference warms up linearly for 5 epochs; our exponential schedule has none (warm-up is "
    "cosine-only). TF1 RMSprop starts its squared-gradient average at 1, Keras at 0."
)

_PAPER = {
    "efficientnet": Recipe(
        family="efficientnet",
        name="paper",
        source=(
            "EfficientNet paper (Tan & Le 2019), section 5.2: RMSprop decay 0.9 momentum 0.9, BN momentum 0.99, "
            "weight decay 1e-5, initial lr 0.256 decayed 0.97 every 2.4 epochs, SiLU, AutoAugment, stochastic "
            "depth survival 0.8, dropout 0.2 (B0) to 0.5 (B7); tensorflow/tpu efficientnet main.py and utils.py: "
            "0.016 per 256 images, 350 epochs, label smoothing 0.1, moving average 0.9999, RMSprop epsilon 1e-3"
        ),
        notes=_TPU_NOTES + " AutoAugment is not reproduced (randaugment stays off); dropout is the variant's.",
        **_TPU_RMSPROP,
    ),
    "mnasnet": Recipe(
        family="mnasnet",
        name="paper",
        source=(
            "MnasNet paper (Tan et al. 2019), section 4: RMSprop decay 0.9 momentum 0.9, BN momentum 0.99, "
            "weight decay 1e-5, dropout 0.2, lr 0 -> 0.256 over 5 epochs then decayed 0.97 every 2.4 epochs, "
            "batch 4K, Inception preprocessing at 224; tensorflow/tpu mnasnet_main.py: 350 epochs, label "
            "smoothing 0.1, moving average 0.9999, RMSprop epsilon 1e-3"
        ),
        notes=_TPU_NOTES,
        dropout_rate=0.2,
        **_TPU_RMSPROP,
    ),
    "efficientnetv2": Recipe(
        family="efficientnetv2",
        name="paper",
        source=(
            "EfficientNetV2 paper (Tan & Le 2021), section 5.1: RMSProp decay 0.9 momentum 0.9, BN momentum "
            "0.99, weight decay 1e-5, batch 4096, 350 epochs, lr warmed up to 0.256 then decayed 0.97 every 2.4 "
            "epochs, EMA 0.9999, RandAugment, Mixup, dropout, stochastic depth survival 0.8; google/automl "
            "efficientnetv2 hparams.py: lr 0.016 per 256 images, label smoothing 0.1, RMSprop epsilon 1e-3"
        ),
        notes=_TPU_NOTES + " Progressive learning (image size, RandAugment magnitude, Mixup and dropout rising "
        "over four stages) and Mixup are not reproduced; RandAugment runs at its default magnitude; dropout "
        "is the variant's.",
        randaugment=True,
        **_TPU_RMSPROP,
    ),
    "mobilenetv3": Recipe(
        family="mobilenetv3",
        name="paper",
        source=(
            "MobileNetV3 paper (Howard et al. 2019), section 6.1 'Training setup': synchronous training on a 4x4 "
            "TPU pod, TensorFlow RMSPropOptimizer with 0.9 momentum, initial learning rate 0.1, batch 4096 (128 "
            "per chip), learning rate decay rate of 0.01 every 3 epochs, dropout 0.8 (keep probability), l2 "
            "weight decay 1e-5, Inception preprocessing, exponential moving average 0.9999, BN average decay 0.99"
        ),
        optimizer="rmsprop",
        rho=0.9,
        momentum=0.9,
        learning_rate=0.1,
        batch_size=4096,
        epochs=350,
        weight_decay=1e-5,
        weight_decay_mode="l2",
        schedule="exponential",
        decay_rate=0.99,
        decay_epochs=3.0,
        ema=0.9999,
        dropout_rate=0.2,
        notes=(
            "Epochs are not published (350, the TPU recipes' count, is our choice). 'Decay rate of 0.01 every 3 "
            "epochs' is read as multiplying by 0.99 every 3 epochs. keras.applications' models keep BN momentum "
            "0.999, the paper's 0.99. TF1 RMSprop starts its squared-gradient average at 1, Keras at 0."
        ),
    ),
    "convnext": Recipe(
        family="convnext",
        name="paper",
        source=(
            "ConvNeXt paper (Liu et al. 2022), appendix A.1, Table 5 (ImageNet-1K training): AdamW (0.9, 0.999), "
            "lr 4e-3 at batch 4096, weight decay 0.05, 300 epochs, cosine decay after 20 linear warm-up epochs, "
            "RandAugment (9, 0.5), Mixup 0.8, CutMix 1.0, random erasing 0.25, label smoothing 0.1, stochastic "
            "depth 0.1 / 0.4 / 0.5 / 0.5 (T / S / B / L), layer scale 1e-6"
        ),
        optimizer="adamw",
        learning_rate=4e-3,
        batch_size=4096,
        epochs=300,
        weight_decay=0.05,
        warmup_epochs=20.0,
        label_smoothing=0.1,
        randaugment=True,
        notes=(
            "Mixup, CutMix and random erasing are not reproduced; RandAugment runs at its default magnitude; "
            "stochastic depth is the model's drop_path_rate (set it per size: 0.1 for tiny ... 0.5 for large). "
            "Weight decay spares LayerNorm, biases and the layer-scale gammas, as timm does."
        ),
    ),
    "inception_resnet_v2": Recipe(
        family="inception_resnet_v2",
        name="paper",
        source=(
            "Inception-v4 / Inception-ResNet paper (Szegedy et al. 2017), section 4 'Training Methodology': "
            "RMSProp with decay 0.9 and epsilon 1.0, learning rate 0.045 decayed every two epochs by 0.94; "
            "TF-slim (which trained the released checkpoint): batch 32 per replica, weight decay 4e-5; 299 px"
        ),
        optimizer="rmsprop",
        rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        learning_rate=0.045,
        batch_size=32,
        epochs=100,
        weight_decay=4e-5,
        weight_decay_mode="l2",
        schedule="exponential",
        decay_rate=0.94,
        decay_epochs=2.0,
        image_size=299,
        notes=(
            "The paper states neither the batch nor the epochs: 0.045 is Inception-v3's rate at 32 images per "
            "replica update and 100 epochs Inception-v3's count. The paper's auxiliary classifier is not built "
            "(keras.applications and timm have none)."
        ),
    ),
    "nasnet": Recipe(
        family="nasnet",
        name="paper",
        source=(
            "TF-slim nets/nasnet/nasnet.py (the authors' code, which trained the released checkpoints), 'Notes for "
            "training the mobile NASNet ImageNet model': batch 32 per replica, sync SGD with 50 replicas, learning "
            "rate 0.04 * 50, decayed 0.97 every 2.4 epochs, auxiliary head weight 0.4, label smoothing 0.1, "
            "global gradient norm clipped to 10; mobile_imagenet_config: dense dropout keep 0.5, 250,000 steps; "
            "nasnet_mobile_arg_scope: weight decay 4e-5, BN decay 0.9997; 224 px"
        ),
        optimizer="rmsprop",
        rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        learning_rate=2.0,  # 0.04 x 50 replicas
        batch_size=1600,  # 32 x 50 replicas, synchronous
        epochs=312,  # 250,000 steps x 1,600 images / 1,281,167 ImageNet training images
        weight_decay=4e-5,
        weight_decay_mode="l2",
        schedule="exponential",
        decay_rate=0.97,
        decay_epochs=2.4,
        label_smoothing=0.1,
        clip_norm=10.0,
        dropout_rate=0.5,
        image_size=224,
        notes=(
            "NASNet-A Mobile's recipe. The notes name no optimizer: RMSprop with TF-slim train_image_classifier.py's "
            "defaults (decay 0.9, momentum 0.9, epsilon 1.0). NASNet-A Large (same notes): batch 16 x 100 replicas, "
            "lr 0.015 x 100, weight decay 5e-5, drop path keep 0.7 (drop_path_rate=0.3; the paper's schedule also "
            "ramps it over the training steps). The auxiliary head is not built (keras.applications and timm have "
            "none)."
        ),
    ),
    "rexnet": Recipe(
        family="rexnet",
        name="paper",
        source=(
            "clovaai/rexnet README, 'Training own ReXNet': timm distributed_train.sh on 4 GPUs, "
            "--opt sgd --lr 0.5 --weight-decay 1e-5 --batch-size 128 --epochs 400 --sched cosine "
            "--drop 0.2 --aa rand-m9-mstd0.5 --remode pixel --reprob 0.2; timm train.py defaults of 2020 "
            "for the rest (nesterov momentum 0.9, --smoothing 0.1, --warmup-epochs 3)"
        ),
        optimizer="sgd",
        nesterov=True,
        momentum=0.9,
        learning_rate=0.5,
        batch_size=512,  # 4 GPUs x 128
        epochs=400,
        weight_decay=1e-5,
        weight_decay_mode="l2",  # PyTorch SGD weight_decay; timm skips BN and biases
        schedule="cosine",
        warmup_epochs=3.0,
        label_smoothing=0.1,
        randaugment=True,
        dropout_rate=0.2,
        notes=(
            "Not reproduced: random erasing (reprob 0.2), timm's 10 cooldown epochs and per-epoch (not "
            "per-step) cosine stepping. warm-up 3 and smoothing 0.1 are timm defaults, not stated in the README."
        ),
    ),
    "rexnet_lite": Recipe(
        family="rexnet_lite",
        name="paper",
        source="clovaai/rexnet README (the ReXNet command; no separate recipe is published for ReXNet-lite)",
        optimizer="sgd",
        nesterov=True,
        momentum=0.9,
        learning_rate=0.5,
        batch_size=512,
        epochs=400,
        weight_decay=1e-5,
        weight_decay_mode="l2",
        schedule="cosine",
        warmup_epochs=3.0,
        label_smoothing=0.1,
        randaugment=True,
        dropout_rate=0.2,
        notes="Assumed equal to the ReXNet recipe; the README does not give one for the lite models.",
    ),
    "mobilenetv2": Recipe(
        family="mobilenetv2",
        name="paper",
        source=(
            "MobileNetV2 paper (Sandler et al. 2018), section 6.1: RMSprop decay 0.9 momentum 0.9, weight decay "
            "4e-5, initial lr 0.045 decayed 0.98 per epoch, 16 asynchronous GPU workers of batch 96; "
            "tensorflow/models slim/nets/mobilenet README: label smoothing 0.1, moving average 0.9999, "
            "RMSprop epsilon 1.0 (opt_epsilon)"
        ),
        optimizer="rmsprop",
        rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        learning_rate=0.045,
        batch_size=96,  # asynchronous workers: each update sees 96 images
        epochs=300,
        weight_decay=4e-5,
        weight_decay_mode="l2",
        schedule="exponential",
        decay_rate=0.98,
        decay_epochs=1.0,
        label_smoothing=0.1,
        ema=0.9999,
        notes=(
            "Epochs are not published: 300 is our choice (0.045 * 0.98^300 = 1e-4, slim's end learning rate). "
            "TF1 RMSprop starts its squared-gradient average at 1, Keras at 0."
        ),
    ),
    "mobilenetv1": Recipe(
        family="mobilenetv1",
        name="paper",
        source=(
            "MobileNets paper (Howard et al. 2017), section 4: 'RMSprop with asynchronous gradient descent similar "
            "to Inception V3', little or no weight decay on depthwise filters; Inception-v3 paper (Szegedy et al. "
            "2016), section 8: RMSprop decay 0.9 epsilon 1.0, lr 0.045 decayed every two epochs by 0.94, batch 32 "
            "per replica, gradient clipping 2.0, label smoothing 0.1; slim mobilenet_v1 arg scope: weight decay 4e-5, "
            "depthwise kernels not regularized"
        ),
        optimizer="rmsprop",
        rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        learning_rate=0.045,
        batch_size=32,  # asynchronous replicas: each update sees 32 images
        epochs=100,
        weight_decay=4e-5,
        weight_decay_mode="l2",
        decay_depthwise=False,
        schedule="exponential",
        decay_rate=0.94,
        decay_epochs=2.0,
        label_smoothing=0.1,
        clip_norm=2.0,
        notes=(
            "Epochs are not published (100 is our choice, lr 0.045 * 0.94^50 = 2e-3 at the end). RMSprop momentum "
            "0.9 is slim's default, not stated in either paper. Linear lr scaling from an asynchronous batch of 32 "
            "gives large rates at big synchronous batches: prefer a measured learning rate there."
        ),
    ),
    "squeezenet": Recipe(
        family="squeezenet",
        name="paper",
        source=(
            "forresti/SqueezeNet SqueezeNet_v1.0/solver.prototxt (also v1.1): SGD momentum 0.9, base_lr 0.04, "
            "lr_policy poly power 1.0, weight_decay 2e-4, batch 32 x iter_size 16 = 512, max_iter 170000"
        ),
        optimizer="sgd",
        momentum=0.9,
        learning_rate=0.04,
        batch_size=512,
        epochs=68,  # 170,000 iterations x 512 / 1,281,167 ImageNet training images = 67.9 epochs
        weight_decay=2e-4,
        weight_decay_mode="l2",
        schedule="linear",
        notes="Caffe's poly policy decays per iteration to exactly 0 at max_iter; so does ours, per step.",
    ),
    "resnet": Recipe(
        family="resnet",
        name="paper",
        source=(
            "torchvision references/classification README ('ResNet: torchrun --nproc_per_node=8 train.py "
            "--model $MODEL', the train.py defaults): SGD momentum 0.9, --lr 0.1, --batch-size 32 per GPU x 8, "
            "--epochs 90, --lr-scheduler steplr --lr-step-size 30 --lr-gamma 0.1, --wd 1e-4"
        ),
        optimizer="sgd",
        momentum=0.9,
        learning_rate=0.1,
        batch_size=256,  # 8 GPUs x 32
        epochs=90,
        weight_decay=1e-4,
        weight_decay_mode="l2",
        schedule="exponential",  # staircase x0.1 every 30 epochs = torchvision's StepLR
        decay_rate=0.1,
        decay_epochs=30.0,
        notes=(
            "torchvision's weight decay also reaches BatchNorm parameters and biases (no --norm-weight-decay "
            "in this recipe); ours spares them. The same recipe trained ResNeXt and the v1 layout."
        ),
    ),
    "resnetv2": Recipe(
        family="resnetv2",
        name="paper",
        source=(
            "fb.resnet.torch, the Torch ResNet code with the pre-activation network (-netType preresnet) of He et "
            "al. 2016 ('Identity Mappings in Deep Residual Networks'): opts.lua -LR 0.1 -momentum 0.9 "
            "-weightDecay 1e-4 and 90 epochs on ImageNet, train.lua Nesterov SGD with the rate divided by 10 "
            "every 30 epochs, TRAINING.md -batchSize 256"
        ),
        optimizer="sgd",
        nesterov=True,
        momentum=0.9,
        learning_rate=0.1,
        batch_size=256,
        epochs=90,
        weight_decay=1e-4,
        weight_decay_mode="l2",
        schedule="multistep",
        decay_rate=0.1,
        milestones=(30.0, 60.0),
        notes=(
            "keras.applications' ResNetV2 weights and timm's a1h_in1k weights (its 'ResNet strikes back' "
            "procedure) were trained otherwise. Torch's weight decay also reaches BatchNorm parameters and "
            "biases; ours spares them."
        ),
    ),
    "xception": Recipe(
        family="xception",
        name="paper",
        source=(
            "Xception paper (Chollet 2017), section 4.2 'Optimization configuration' for ImageNet: SGD momentum "
            "0.9, initial learning rate 0.045 decayed by 0.94 every 2 epochs; section 4.3: L2 weight decay 1e-5, "
            "dropout 0.5 before the classifier, no auxiliary tower; 299 px"
        ),
        optimizer="sgd",
        momentum=0.9,
        learning_rate=0.045,
        batch_size=32,
        epochs=100,
        weight_decay=1e-5,
        weight_decay_mode="l2",
        schedule="exponential",
        decay_rate=0.94,
        decay_epochs=2.0,
        dropout_rate=0.5,
        image_size=299,
        notes=(
            "The paper states neither the batch nor the epochs (60 K80 GPUs, synchronous SGD, about 3 days): its "
            "optimizer settings are Inception V3's, tuned at 32 images per update, so 0.045 is stated for a "
            "batch of 32 and scales linearly; 100 epochs are Inception V3's. keras.applications' Xception has no "
            "dropout (dropout_rate=0.5 restores the paper's)."
        ),
    ),
    "parnet": Recipe(
        family="parnet",
        name="paper",
        source=(
            "imankgoyal/NonDeepNetworks imagenet/train_models.sh (ParNet-S/M/L/XL, 120 epochs): 8 GPUs x -b 128, "
            "--opt sgd (timm: nesterov, momentum 0.9) --lr 0.001 --sched cosine --warmup-epochs 0 --smoothing 0.1 "
            "--model-ema --model-ema-decay 0.9999 --aa rand-m9-mstd0.5 --remode pixel --reprob 0.2 (L, XL: 0.4) "
            "--mixup 0.0 --input-size 3 224 224; train.py defaults --weight-decay 1e-4 --min-lr 1e-5"
        ),
        optimizer="sgd",
        nesterov=True,
        momentum=0.9,
        learning_rate=0.001,  # as the released command line writes it, for the global batch of 1024
        batch_size=1024,
        epochs=120,
        weight_decay=1e-4,
        weight_decay_mode="l2",
        schedule="cosine",
        label_smoothing=0.1,
        ema=0.9999,
        randaugment=True,
        dropout_rate=0.0,  # the S and M YAMLs; L and XL train with dropout_lin 0.1
        notes=(
            "Not reproduced: random erasing, timm's 10 cooldown epochs and min lr 1e-5, per-epoch cosine stepping. "
            "ParNet-XL's best model trains 200 epochs, then fine-tunes 16 epochs at 320 px (lr 0.001, mixup 0.1, "
            "reprob 0.6) and is tested at 352 px with ten crops."
        ),
    ),
    "regnet": Recipe(
        family="regnet",
        name="paper",
        source=(
            "facebookresearch/pycls configs/dds_baselines/regnetx/RegNetX-200MF_dds_8gpu.yaml (and every "
            "RegNetX/Y baseline there): OPTIM LR_POLICY cos, BASE_LR 0.8, MAX_EPOCH 100, MOMENTUM 0.9, "
            "WEIGHT_DECAY 5e-5, WARMUP_EPOCHS 5; TRAIN BATCH_SIZE 1024 on 8 GPUs; pycls/core/config.py "
            "defaults: NESTEROV True, WARMUP_FACTOR 0.1, LABEL_SMOOTHING 0"
        ),
        optimizer="sgd",
        nesterov=True,
        momentum=0.9,
        learning_rate=0.8,
        batch_size=1024,  # the >= 3.2GF configs use 0.4 / 512 or 0.2 / 256: the same rate per image
        epochs=100,
        weight_decay=5e-5,
        weight_decay_mode="l2",
        schedule="cosine",
        warmup_epochs=5.0,
        notes=(
            "pycls warms up linearly from 0.1x the rate, ours from 0; pycls decays BatchNorm parameters too "
            "(BN.USE_CUSTOM_WEIGHT_DECAY False), ours spares them. Larger models use smaller batches at the "
            "same rate per image, which the linear scaling rule reproduces."
        ),
    ),
}


_SMALL_DATA = Recipe(
    family="*",
    name="default",
    source="keras_lightnets: a small-data recipe for the bundled 32x32 digits (AdamW, cosine, 1 warm-up epoch)",
    optimizer="adamw",
    learning_rate=2e-3,
    batch_size=32,
    epochs=5,
    weight_decay=0.05,
    weight_decay_mode="decoupled",
    schedule="cosine",
    warmup_epochs=1.0,
    label_smoothing=0.1,
    notes="Tuned to train in minutes on 2 CPU cores, not for ImageNet.",
)

# PyramidNet on CIFAR (dyhan0920/PyramidNet-PyTorch train.py), shared by CIFAR-10 and CIFAR-100.
_PYRAMIDNET_CIFAR = Recipe(
    family="pyramidnet",
    name="paper",
    source=(
        "dyhan0920/PyramidNet-PyTorch train.py and README: SGD nesterov=True, --momentum 0.9, --weight-decay "
        "1e-4, --batch_size 128, --epochs 300, --lr 0.1 (CIFAR-10), adjust_learning_rate: lr * 0.1 ** (epoch // "
        "(epochs * 0.5)) * 0.1 ** (epoch // (epochs * 0.75)); fb.resnet.torch augmentation (4-pixel padded "
        "random crop, horizontal flip)"
    ),
    optimizer="sgd",
    nesterov=True,
    momentum=0.9,
    learning_rate=0.1,
    batch_size=128,
    epochs=300,
    weight_decay=1e-4,
    weight_decay_mode="l2",
    schedule="multistep",
    decay_rate=0.1,
    milestones=(150.0, 225.0),  # epochs * 0.5 and epochs * 0.75
    notes="PyTorch's weight decay also reaches BatchNorm parameters and biases; ours spares them.",
)

# ("*", name) recipes apply to every family that has no recipe of that name.
RECIPES = {
    ("*", "default"): _SMALL_DATA,
    # SqueezeNet has no BatchNorm and ends in conv10 -> ReLU -> global average pool, so a
    # class whose conv10 output turns negative at every position of every image gets no
    # gradient again ("dead" class). While the features do not yet tell classes apart, every
    # class's conv10 is pushed down a little; Adam turns that small, steady gradient into a
    # full step of lr per update and walks classes into death. Measured (seed 0, bundled
    # digits): the shared recipe at 32 px (1x1 last map) stays at 9.9 %; at 64 px with lr 5e-4
    # and Adam's epsilon 1e-7, 30 epochs left 5 classes alive (54.6 %); epsilon 1e-3 (small
    # gradients move in proportion again) keeps all 10: 94.6 % in 15 epochs, 97.2 % in 30.
    ("squeezenet", "default"): replace(
        _SMALL_DATA,
        family="squeezenet",
        source=(
            "keras_lightnets: the small-data recipe for SqueezeNet on the bundled digits "
            "(64 px, AdamW lr 5e-4 with epsilon 1e-3, no label smoothing, 15 epochs)"
        ),
        learning_rate=5e-4,
        epsilon=1e-3,
        epochs=15,
        label_smoothing=0.0,
        image_size=64,
        notes=(
            "SqueezeNet's ReLU classifier loses classes for good at 32 px (1x1 last map), at lr 2e-3 and with "
            "Adam's default epsilon; the images are upsampled to 64 px. Tuned on 2 CPU cores, not for ImageNet."
        ),
    ),
    # RegNet (and any AnyNet) barely learns the digits at 32 px with the shared recipe, though ResNet-18,
    # with the same output stride of 32 and the same 1x1 last map, does. Measured (seed 0, regnetx_002):
    # 13.5 % test accuracy after 2 epochs and 25.9 % after 5 at 32 px; at 64 px 51.8 % after 2 and
    # 85.4 % after 5. Ruled out: the grouped convolution (dense 3x3s: 18.1 % after 2 epochs at 32 px) and
    # the initialization (pycls's fan-out He init: no change).
    **{
        (family, "default"): replace(
            _SMALL_DATA,
            family=family,
            source=f"keras_lightnets: the small-data recipe for {family} on the bundled digits, at 64 px",
            image_size=64,
            notes=(
                "The shared small-data recipe with the images upsampled to 64 px: at 32 px RegNetX-200MF reached "
                "25.9 % in 5 epochs, at 64 px 85.4 %. Tuned on 2 CPU cores, not for ImageNet."
            ),
        )
        for family in ("regnet", "anynet")
    },
    # EfficientNet keeps keras.applications' fan-out initializers: depthwise kernels start ~10x
    # the Glorot scale and the classifier, sized for 1000 classes, gives 10 classes logits of
    # std 5 (MobileNetV2: 0.9), so Adam's fixed-size steps move it slowly; and at 32 px its last
    # two stages run 5x5 kernels on 1x1-2x2 maps. Measured (seed 0, efficientnet_lite0, 10
    # epochs, validation accuracy): 20.8 % at 32 px and lr 2e-3 (the shared recipe), 30.4 % at
    # 32 px and lr 1e-2, 58.0 % at 64 px and lr 2e-3, 93.8 % at 64 px and lr 1e-2.
    ("efficientnet", "default"): replace(
        _SMALL_DATA,
        family="efficientnet",
        source="keras_lightnets: the small-data recipe for EfficientNet on the bundled digits (64 px, AdamW lr 1e-2)",
        learning_rate=1e-2,
        image_size=64,
        notes=(
            "The shared small-data recipe at 64 px and 5x the rate: keras.applications' fan-out initialization "
            "learns slowly under Adam at 2e-3, and 32 px leaves the last stages 1x1 maps. EfficientNet-Lite0 "
            "after 10 epochs: 93.8 % (shared recipe: 20.8 %). Tuned on 2 CPU cores, not for ImageNet."
        ),
    ),
    # MobileNetV3 on the bundled digits, seed 0, the shared recipe (tests/deploy/test_mobilenetv3_digits.py):
    # mobilenetv3_small_075 at 32 px (a 1x1 last map) 68 % after 5 epochs; at 64 px 97.7 %.
    ("mobilenetv3", "default"): replace(
        _SMALL_DATA,
        family="mobilenetv3",
        source="keras_lightnets: the small-data recipe for MobileNetV3 on the bundled digits, at 64 px",
        image_size=64,
        notes=(
            "The shared small-data recipe at 64 px: mobilenetv3_small_075, seed 0, 5 epochs of 45 steps reached "
            "97.7 % at 64 px and 68 % at 32 px (a 1x1 last map). Tuned on 2 CPU cores, not for ImageNet."
        ),
    ),
    # MobileOne's training form is a plain stack (no shortcut) of summed, separately normalized branches; at
    # 32 px its last stages run on 2x2 and 1x1 maps and it barely learns the digits, timm's model as much as
    # ours (mobileone_s0, seed 0, AdamW 2e-3: 12.6 % training accuracy in timm after 180 steps, ours 14.6 %;
    # 27.3 % test after 30 epochs). At 64 px mobileone_s1 reaches 66.8 % in 5 epochs (32 px: 64.8 % in 30).
    ("mobileone", "default"): replace(
        _SMALL_DATA,
        family="mobileone",
        source="keras_lightnets: the small-data recipe for MobileOne on the bundled digits, at 64 px",
        image_size=64,
        notes=(
            "The shared small-data recipe at 64 px: mobileone_s1, seed 0, 5 epochs: 66.8 % at 64 px; 30 epochs at "
            "32 px (a 1x1 last map): 64.8 %. Tuned on 2 CPU cores, not for ImageNet."
        ),
    ),
    # Xception's two "valid" 3x3 convolutions and four stride-2 stages need at least 71 px: the shared
    # recipe with the digits upsampled to 96 px (not measured on the digits: too slow on 2 cores).
    ("xception", "default"): replace(
        _SMALL_DATA,
        family="xception",
        source="keras_lightnets: the small-data recipe for Xception on the bundled digits, at 96 px",
        image_size=96,
        notes="The shared small-data recipe at 96 px, the smallest multiple of 32 Xception takes (71 px).",
    ),
    # GoogLeNet trains with two auxiliary classifiers (the paper's section 5, weight 0.3 each): the
    # shared recipe with them on. 96 px, because the paper layout's (googlenet_original) auxiliary
    # classifiers average-pool 5x5/3 from inception 4a (stride 16), which needs at least 79 px.
    ("googlenet", "default"): replace(
        _SMALL_DATA,
        family="googlenet",
        source=(
            "keras_lightnets: the small-data recipe for GoogLeNet on the bundled digits, at 96 px, with the "
            "auxiliary classifiers of the paper (Szegedy et al. 2015, section 5: loss weight 0.3 each)"
        ),
        image_size=96,
        auxiliary_loss_weight=AUXILIARY_LOSS_WEIGHT,
        notes=(
            "The shared small-data recipe plus GoogLeNet's auxiliary classifiers. 96 px is not tuned: it is the "
            "smallest multiple of 32 at which the paper layout's auxiliary classifiers (a 5x5/3 average pool on "
            "inception 4a) fit; torchvision's layout pools adaptively and takes any size."
        ),
    ),
    # Inception-v3 (Szegedy et al. 2016) trains with its auxiliary classifier on mixed7, its loss
    # weighted 0.4 (TF-slim's train_image_classifier.py, which trained the released model).
    ("inception_v3", "paper"): Recipe(
        family="inception_v3",
        name="paper",
        source=(
            "Inception-v3 paper (Szegedy et al. 2016), section 8: 50 replicas, batch 32 each, 100 epochs, RMSProp "
            "decay 0.9 epsilon 1.0, lr 0.045 decayed every two epochs by 0.94, gradient clipping 2.0; section 7: "
            "label smoothing 0.1; TF-slim train_image_classifier.py: auxiliary loss weight 0.4, rmsprop_momentum "
            "0.9; inception_v3_arg_scope: weight decay 4e-5; 299 px"
        ),
        optimizer="rmsprop",
        rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        learning_rate=0.045,
        batch_size=32,  # asynchronous replicas: each update sees 32 images
        epochs=100,
        weight_decay=4e-5,
        weight_decay_mode="l2",
        schedule="exponential",
        decay_rate=0.94,
        decay_epochs=2.0,
        label_smoothing=0.1,
        clip_norm=2.0,
        image_size=299,
        auxiliary_loss_weight=0.4,
        notes=(
            "RMSprop momentum 0.9 and the weight decay are TF-slim's, not stated in the paper. Linear lr scaling "
            "from an asynchronous batch of 32 gives large rates at big synchronous batches: prefer a measured "
            "learning rate there."
        ),
    ),
    ("inception_v3", "default"): replace(
        _SMALL_DATA,
        family="inception_v3",
        source=(
            "keras_lightnets: the small-data recipe for Inception-v3 on the bundled digits, at 96 px, with its "
            "auxiliary classifier (loss weight 0.4, TF-slim's)"
        ),
        image_size=96,
        auxiliary_loss_weight=0.4,
        notes=(
            "The shared small-data recipe plus Inception-v3's auxiliary classifier. 96 px is not tuned: the "
            "smallest multiple of 32 above Inception-v3's 75-pixel minimum (below 299 px the auxiliary "
            "classifier zero-pads mixed7 to 17x17)."
        ),
    ),
    # PyramidNet: the authors' PyTorch port. CIFAR-10 is "paper" (every CIFAR variant but one is a
    # CIFAR-10 model); CIFAR-100 trains at 0.5; ImageNet at 0.05, /10 every 30 epochs.
    ("pyramidnet", "paper"): _PYRAMIDNET_CIFAR,
    ("pyramidnet", "paper_cifar100"): replace(
        _PYRAMIDNET_CIFAR,
        name="paper_cifar100",
        source=_PYRAMIDNET_CIFAR.source.replace("--lr 0.1 (CIFAR-10)", "--lr 0.5 --dataset cifar100"),
        learning_rate=0.5,
    ),
    ("pyramidnet", "paper_imagenet"): Recipe(
        family="pyramidnet",
        name="paper_imagenet",
        source=(
            "dyhan0920/PyramidNet-PyTorch README (PyramidNet-200, alpha 300, on ImageNet-1k with 8 GPUs): "
            "train.py --lr 0.05 --batch_size 128 --epochs 100 --dataset imagenet; train.py: SGD nesterov=True, "
            "--momentum 0.9, --weight-decay 1e-4, adjust_learning_rate: lr * 0.1 ** (epoch // 30)"
        ),
        optimizer="sgd",
        nesterov=True,
        momentum=0.9,
        learning_rate=0.05,
        batch_size=128,  # DataParallel over 8 GPUs: 128 images per update
        epochs=100,
        weight_decay=1e-4,
        weight_decay_mode="l2",
        schedule="exponential",  # staircase x0.1 every 30 epochs
        decay_rate=0.1,
        decay_epochs=30.0,
        notes=(
            "PyTorch's weight decay also reaches BatchNorm parameters and biases; ours spares them. The published "
            "PyramidNet-200 (alpha 450) adds dropout 0.5, which is the variant's default."
        ),
    ),
    # Residual Attention Network on CIFAR (the paper's section 4.1; its CIFAR model is resattnet92_cifar).
    # The ImageNet text (SGD 0.9, lr 0.1 / 10 at 200k, 400k, 500k of 530k iterations) states no batch
    # size, so no epochs: it is not a recipe here.
    ("resattnet", "paper_cifar"): Recipe(
        family="resattnet",
        name="paper_cifar",
        source=(
            "Wang et al., 'Residual Attention Network for Image Classification', CVPR 2017, section 4.1 (CIFAR): "
            "Nesterov SGD, mini-batch 64, weight decay 0.0001, momentum 0.9, initial learning rate 0.1 divided by "
            "10 at 64k and 96k iterations, training ends at 160k iterations; 4-pixel zero padding, random 32x32 "
            "crop and horizontal flip, per-pixel mean subtracted"
        ),
        optimizer="sgd",
        nesterov=True,
        momentum=0.9,
        learning_rate=0.1,
        batch_size=64,
        epochs=205,  # 160,000 iterations x 64 / 50,000 training images = 204.8 epochs
        weight_decay=1e-4,
        weight_decay_mode="l2",
        schedule="multistep",
        decay_rate=0.1,
        milestones=(81.92, 122.88),  # 64,000 and 96,000 iterations of 64 images
        notes="Caffe's weight decay also reaches BatchNorm scale and shift; ours spares them.",
    ),
    **{(family, "paper"): recipe for family, recipe in _PAPER.items()},
}


def list_recipes(family=None):
    """Sorted recipe names available to ``family`` (its own and the ``"*"`` ones), or all (family, name) keys."""
    if family is None:
        return sorted(RECIPES)
    return sorted({name for fam, name in RECIPES if fam in (family, "*")})


def get_recipe(family, name="default"):
    """The recipe ``name`` for ``family`` (falling back to the ``"*"`` recipes); ``ValueError`` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"recipe name must be a string, got {name!r}")
    for key in ((family, name), ("*", name)):
        if key in RECIPES:
            return RECIPES[key]
    raise ValueError(
        f"unknown recipe {name!r} for model family {family!r}; available: {', '.join(list_recipes(family))}"
    )
