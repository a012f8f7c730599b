"""Blocks shared by two or more model families."""

from modelzoo.layers.attention import Attention, CrossAttention, KVCache, causal_mask
from modelzoo.layers.checks import (
    as_features,
    check_features,
    check_float_dtype,
    check_image,
    check_sequence,
    check_tokens,
    param_dtype,
)
from modelzoo.layers.drop import DropPath, drop_path
from modelzoo.layers.features import FeatureListNet, resolve_out_indices
from modelzoo.layers.helpers import (
    LayerType,
    get_act_layer,
    get_norm_layer,
    get_norm_layer_or_none,
    make_act,
    model_name,
)
from modelzoo.layers.mlp import Mlp
from modelzoo.layers.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_encoding,
)
from modelzoo.layers.recurrent import Recurrent
from modelzoo.layers.specs import TensorSpec, feature_inputs, image_inputs, token_inputs
from modelzoo.layers.tracing import graph_leaf, is_fx_proxy, is_tracing

__all__ = [
    "Recurrent",
    "TensorSpec",
    "Attention",
    "CrossAttention",
    "DropPath",
    "KVCache",
    "LearnedPositionalEmbedding",
    "Mlp",
    "SinusoidalPositionalEncoding",
    "causal_mask",
    "drop_path",
    "sinusoidal_encoding",
    "FeatureListNet",
    "as_features",
    "LayerType",
    "check_features",
    "check_float_dtype",
    "check_image",
    "check_sequence",
    "check_tokens",
    "feature_inputs",
    "get_act_layer",
    "make_act",
    "get_norm_layer",
    "get_norm_layer_or_none",
    "graph_leaf",
    "image_inputs",
    "is_fx_proxy",
    "is_tracing",
    "model_name",
    "param_dtype",
    "resolve_out_indices",
    "token_inputs",
]
