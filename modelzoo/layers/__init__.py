"""Blocks shared by two or more model families."""

from modelzoo.layers.attention import Attention, CrossAttention, KVCache, causal_mask
from modelzoo.layers.checks import check_features, check_image, check_sequence, check_tokens
from modelzoo.layers.features import FeatureListNet, resolve_out_indices
from modelzoo.layers.helpers import LayerType, get_act_layer, get_norm_layer
from modelzoo.layers.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_encoding,
)
from modelzoo.layers.recurrent import Recurrent
from modelzoo.layers.specs import TensorSpec, feature_inputs, image_inputs, token_inputs

__all__ = [
    "Recurrent",
    "TensorSpec",
    "Attention",
    "CrossAttention",
    "KVCache",
    "LearnedPositionalEmbedding",
    "SinusoidalPositionalEncoding",
    "causal_mask",
    "sinusoidal_encoding",
    "FeatureListNet",
    "LayerType",
    "check_features",
    "check_image",
    "check_sequence",
    "check_tokens",
    "feature_inputs",
    "get_act_layer",
    "get_norm_layer",
    "image_inputs",
    "resolve_out_indices",
    "token_inputs",
]
