"""Import laion-clap's `clap_module` without `laion_clap/__init__` and, if need be, without torchvision.

Why: ``import laion_clap`` runs ``laion_clap/hook.py``, which imports webdataset/wget and calls
``RobertaTokenizer.from_pretrained('roberta-base')`` at import time (offline: minutes of
retries, then an empty tokenizer). All that ``__init__`` does besides is put its own folder on
``sys.path`` so that ``clap_module`` is importable as a top-level package; `clap_module()` does
the same and imports it directly.

``clap_module`` imports torchvision in two places that the audio/text path never needs:
``utils.py`` takes ``torchvision.ops.misc.FrozenBatchNorm2d`` (used only by
``freeze_batch_norm_2d``) and ``transform.py`` takes image transforms (used only by the image
tower). When torchvision is not importable (the only installable build here is a 5.5 GB CUDA
wheel), `install_torchvision_shim` registers a minimal stand-in in ``sys.modules``: a faithful
`FrozenBatchNorm2d` (same buffers and arithmetic as torchvision's) and image-transform
placeholders that raise NotImplementedError when used. With a real torchvision nothing is shimmed.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import torch
from torch import nn

SHIM_MARK = "__musicot_shim__"


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (torchvision.ops.misc semantics).

    Buffers weight, bias, running_mean, running_var, as torchvision's; the output equals an
    eval-mode ``nn.BatchNorm2d`` with the same values.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, msgs):
        state_dict.pop(prefix + "num_batches_tracked", None)  # BatchNorm2d has it, a frozen one does not
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        return x * scale + (b - rm * scale)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class _ImageOnly:
    """Placeholder for a torchvision image transform: constructing is fine, calling is not."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(
            f"torchvision.transforms.{type(self).__name__} is a musicot shim (torchvision is not installed); "
            "CLAP's image transforms are not available"
        )


def _placeholder(name: str) -> type:
    return type(name, (_ImageOnly,), {})


def install_torchvision_shim() -> bool:
    """Register the minimal `torchvision` in sys.modules unless a real one imports; True if shimmed."""
    existing = sys.modules.get("torchvision")
    if existing is not None:
        return bool(getattr(existing, SHIM_MARK, False))
    if importlib.util.find_spec("torchvision") is not None:
        try:
            importlib.import_module("torchvision")
            return False
        except Exception:  # a broken install counts as absent
            for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
                del sys.modules[key]
    # transformers probes torchvision with find_spec at import (and caches it): let it see the truth first.
    importlib.import_module("transformers")
    root = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    misc = types.ModuleType("torchvision.ops.misc")
    transforms = types.ModuleType("torchvision.transforms")
    misc.FrozenBatchNorm2d = FrozenBatchNorm2d
    for name in ("Normalize", "Compose", "RandomResizedCrop", "ToTensor", "Resize", "CenterCrop"):
        setattr(transforms, name, _placeholder(name))
    transforms.InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic", BILINEAR="bilinear", NEAREST="nearest")
    ops.misc = misc
    root.ops, root.transforms = ops, transforms
    for module in (root, ops, misc, transforms):
        setattr(module, SHIM_MARK, True)
        # A spec (so later find_spec calls do not raise) but no __file__/__version__: transformers
        # then still reports torchvision as unavailable.
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
        sys.modules[module.__name__] = module
    return True


def laion_clap_dir() -> Path:
    """The installed laion_clap package folder, found without importing it."""
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("laion-clap is not installed (pip install --no-deps laion-clap==1.1.7)")
    return Path(next(iter(spec.submodule_search_locations)))


def clap_module() -> types.ModuleType:
    """laion-clap's `clap_module` package, imported as laion_clap/__init__ would, minus hook.py."""
    if "clap_module" in sys.modules:
        return sys.modules["clap_module"]
    install_torchvision_shim()
    folder = str(laion_clap_dir())
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module("clap_module")
