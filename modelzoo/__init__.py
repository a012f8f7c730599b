"""modelzoo: every classic deep-learning family behind one registry.

    import modelzoo as mz
    model = mz.create("resnet50", num_classes=10)
    mz.list_models("resnet*")
    card = mz.model_card("resnet50")

Importing the package is cheap: model families load on the first registry
query, and timm, torchvision and torchaudio only when a model needs them.
"""

import os as _os
import sys as _sys

if "torch" not in _sys.modules:
    # OpenMP threads that spin while they wait make small models on a shared or busy CPU run
    # tens of times slower; passive waiting costs little when the CPU is idle. Set before torch
    # loads OpenMP; an explicit OMP_WAIT_POLICY wins.
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from modelzoo import errors  # noqa: E402

# Functions named like their modules (predict, transforms, translate, ...) are imported eagerly,
# so that the package attribute stays the function after `import modelzoo.transforms` (a lazy
# attribute would be replaced by the module). Each of these modules is cheap to import.
from modelzoo.embed import embed  # noqa: E402
from modelzoo.errors import (
    CheckpointError,
    ConfigError,
    InputShapeError,
    IntegrityError,
    ModelzooError,
    NonFiniteLossError,
    OfflineError,
    UnknownModelError,
    UnknownWeightsError,
    UnsafeCheckpointError,
    WeightsError,
)
from modelzoo.predict import predict  # noqa: E402
from modelzoo.quantize import quantize  # noqa: E402
from modelzoo.registry import (
    ModelCard,
    TensorSpec,
    create,
    example_inputs,
    list_models,
    model_card,
    register_model,
)
from modelzoo.summarize import summarize  # noqa: E402
from modelzoo.transforms import transforms  # noqa: E402
from modelzoo.translate import translate  # noqa: E402

__version__ = "0.1.0"

# Loaded on first use, so that `import modelzoo` stays light.
_LAZY = {
    "save_pretrained": "modelzoo.weights.pretrained",
    "from_pretrained": "modelzoo.weights.pretrained",
    "LoadReport": "modelzoo.transfer",
    "push_to_hub": "modelzoo.weights.hub",
    "policy_from_pretrained": "modelzoo.weights.pretrained",
    "export_model": "modelzoo.export",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelzoo' has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "ConfigError",
    "InputShapeError",
    "IntegrityError",
    "LoadReport",
    "ModelCard",
    "ModelzooError",
    "NonFiniteLossError",
    "OfflineError",
    "TensorSpec",
    "UnknownModelError",
    "UnknownWeightsError",
    "UnsafeCheckpointError",
    "WeightsError",
    "__version__",
    "create",
    "embed",
    "errors",
    "example_inputs",
    "export_model",
    "from_pretrained",
    "list_models",
    "model_card",
    "policy_from_pretrained",
    "predict",
    "push_to_hub",
    "quantize",
    "register_model",
    "save_pretrained",
    "summarize",
    "transforms",
    "translate",
]
