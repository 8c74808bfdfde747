"""Importing the PyTorch references (timm, torchvision) on this CPU-only set-up.

PyPI's torchvision is a CUDA build. On the CPU torch wheel its compiled ops
fail to load, and ``import torchvision`` then dies registering fake kernels for
``torchvision::nms`` / ``qnms``, which only exist in that compiled library.
Declaring the two operator schemas first lets the pure-Python model code import;
no model we compare with uses those ops. Where the CUDA build loads, the real
operators are already defined and nothing is declared.
"""

import os

import pytest

# CI sets this: there a reference that cannot be imported is a failure, not a skip, so a broken
# install can never turn the exactness tests green by skipping them.
REQUIRE_ENV = "LIGHTNETS_REQUIRE_REFERENCES"


def _unavailable(reason):
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set: reference tests may not skip)", pytrace=False)
    pytest.skip(reason)


_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None


def _declare_torchvision_ops(torch):
    global _library
    missing = [op for op in _SCHEMAS if not torch._C._dispatch_has_kernel(f"torchvision::{op}")]
    try:
        missing = [op for op in missing if not hasattr(torch.ops.torchvision, op)]
    except (RuntimeError, AttributeError):
        pass
    if missing and _library is None:
        _library = torch.library.Library("torchvision", "FRAGMENT")
        for op in missing:
            _library.define(_SCHEMAS[op])


def import_torch():
    """``torch`` (or skips the test; fails under ``LIGHTNETS_REQUIRE_REFERENCES``)."""
    try:
        import torch
    except ImportError:
        _unavailable("PyTorch is not installed (pip install -e .[test])")
    return torch


def import_reference(name):
    """Imports ``timm`` or ``torchvision`` (or skips the test with the reason it cannot)."""
    torch = import_torch()
    _declare_torchvision_ops(torch)
    try:
        module = __import__(name)
    except Exception as error:  # a broken binary wheel raises more than ImportError
        _unavailable(f"{name} cannot be imported here: {type(error).__name__}: {error}")
    torch.set_grad_enabled(False)
    return torch, module


def randomize_batchnorm(torch, module, seed=0):
    """Non-trivial BN statistics and affine terms, so a BN mix-up cannot hide."""
    generator = torch.Generator().manual_seed(seed)
    for child in module.modules():
        if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
            shape = child.running_mean.shape
            child.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
            child.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
            child.weight.data.copy_(torch.rand(shape, generator=generator) + 0.5)
            child.bias.data.copy_(torch.randn(shape, generator=generator) * 0.1)
