"""Transfer learning: a pretrained network, a new classifier, and what trains.

    import keras_lightnets as kl

    pretrained = kl.create_model("efficientnet_lite0")
    kl.weights.load_checkpoint(pretrained, "efficientnet-lite0.pth")   # or create_model(..., weights="imagenet")
    model = kl.transfer.new_head(pretrained, classes=10)             # same body and weights, a new 10-class head
    plan = kl.transfer.freeze(model, "head")                         # method 1: the classifier only
    plan = kl.transfer.freeze(model, "from-back:3")                  # method 2: and the last 3 blocks
    optimizer = kl.transfer.BodyRateAdamW(1e-3, body_rate=0.1, body_variables=plan.body_variables)

or in one call, through ``keras_lightnets.training.fit(name, weights=..., transfer="head" |
"from-back[:N]")`` and ``lightnets train NAME --weights imagenet --transfer from-back:3``.

- :func:`new_head` (``head.py``): the model card's architecture rebuilt with a new number of
  classes (the family's own head), the body's weights copied by layer name.
- :func:`freeze` (``freeze.py``): ``trainable=False`` on everything but the head, or but the head
  and the body's last blocks; frozen BatchNorm layers run in inference mode (Keras 3), frozen
  stochastic depth does not drop, and quantization-aware training keeps the frozen layers frozen.
- :func:`model_structure` (``structure.py``): the head and the blocks, read from the graph.
- ``BodyRateSGD`` / ``RMSprop`` / ``Adam`` / ``AdamW`` (``optimizers.py``): a lower learning rate
  for the unfrozen body than for the new head.
"""

from keras_lightnets.transfer.freeze import METHODS, TransferPlan, freeze, parse_transfer
from keras_lightnets.transfer.head import check_pretrained_weights, copy_body_weights, load_pretrained, new_head
from keras_lightnets.transfer.optimizers import (
    BodyRateAdam,
    BodyRateAdamW,
    BodyRateRMSprop,
    BodyRateSGD,
    body_rate_class,
)
from keras_lightnets.transfer.structure import Block, ModelStructure, model_structure

__all__ = [
    "METHODS",
    "Block",
    "BodyRateAdam",
    "BodyRateAdamW",
    "BodyRateRMSprop",
    "BodyRateSGD",
    "ModelStructure",
    "TransferPlan",
    "body_rate_class",
    "check_pretrained_weights",
    "copy_body_weights",
    "freeze",
    "load_pretrained",
    "model_structure",
    "new_head",
    "parse_transfer",
]
