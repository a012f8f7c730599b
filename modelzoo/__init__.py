"""modelzoo: every classic deep-learning family behind one registry.

    import modelzoo as mz
    model = mz.create("resnet50", num_classes=10)
    mz.list_models("resnet*")
    card = mz.model_card("resnet50")

Importing the package is cheap: model families load on the first registry
query, and timm, torchvision and torchaudio only when a model needs them.
"""

from modelzoo import errors
from modelzoo.errors import (
    CheckpointError,
    ConfigError,
    InputShapeError,
    IntegrityError,
    ModelzooError,
    NonFiniteLossError,
    OfflineError,
    UnknownModelError,
    UnsafeCheckpointError,
    WeightsError,
)
from modelzoo.registry import (
    ModelCard,
    TensorSpec,
    create,
    example_inputs,
    list_models,
    model_card,
    register_model,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "InputShapeError",
    "IntegrityError",
    "ModelCard",
    "ModelzooError",
    "NonFiniteLossError",
    "OfflineError",
    "TensorSpec",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "WeightsError",
    "__version__",
    "create",
    "errors",
    "example_inputs",
    "list_models",
    "model_card",
    "register_model",
]
