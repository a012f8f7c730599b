"""Transfer learning: pretrained weights into a changed model, freezing, features.

- :mod:`~modelzoo.transfer.loading`: ``load_pretrained`` and its ``LoadReport``,
  ``read_state_dict``;
- :mod:`~modelzoo.transfer.adapt`: fitting tensors to a changed model (input channels);
- :mod:`~modelzoo.transfer.freezing`: ``freeze``, ``unfreeze``, ``GradualUnfreeze``;
- :mod:`~modelzoo.transfer.features`: pooled features for linear probes.

Parameter groups (layer-wise learning rates) live in :mod:`modelzoo.train.param_groups`;
``save_pretrained``/``from_pretrained`` in :mod:`modelzoo.weights.pretrained`.
"""

from modelzoo.transfer.adapt import adapt_input_conv, adapt_input_conv_weight
from modelzoo.transfer.features import extract_features
from modelzoo.transfer.freezing import (
    GradualUnfreeze,
    freeze,
    trainable_parameter_count,
    unfreeze,
)
from modelzoo.transfer.loading import (
    AdaptedKey,
    LoadReport,
    ReinitializedKey,
    load_pretrained,
    read_state_dict,
)
from modelzoo.transfer.parts import head_prefixes

__all__ = [
    "AdaptedKey",
    "GradualUnfreeze",
    "LoadReport",
    "ReinitializedKey",
    "adapt_input_conv",
    "adapt_input_conv_weight",
    "extract_features",
    "freeze",
    "head_prefixes",
    "load_pretrained",
    "read_state_dict",
    "trainable_parameter_count",
    "unfreeze",
]
