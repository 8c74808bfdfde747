"""Model families: one file each, the published configuration at the top."""

from keras_lightnets.models.mobilenet import MobileNet
from keras_lightnets.models.mobilenetv2 import MobileNetV2
from keras_lightnets.models.rexnet import ReXNet
from keras_lightnets.models.rexnet_lite import ReXNetLite
from keras_lightnets.models.squeezenet import SqueezeNet

__all__ = ["MobileNet", "MobileNetV2", "ReXNet", "ReXNetLite", "SqueezeNet"]
