"""Vision Transformers: an image cut into patches, read by a Transformer encoder.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale" (ICLR 2021, arXiv:2010.11929).

State-dict keys follow timm's ``VisionTransformer`` (``cls_token``,
``pos_embed``, ``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,
norm2,mlp.fc1,mlp.fc2}``, ``norm`` or ``fc_norm``, ``head``), so timm weights
load with ``strict=True`` and give the same outputs.

The position embedding is learned for one grid, so a model takes images of
exactly ``img_size``; build it with another ``img_size`` for other inputs (pretrained
weights made for another size are loaded with their position embedding resampled to the
new grid, bicubic, as timm does), or with ``dynamic_img_size=True`` to take any image
whose sides are multiples of the patch size, the embedding resampled on the fly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import (
    Attention,
    DropPath,
    LayerType,
    Mlp,
    check_image,
    get_act_layer,
    get_norm_layer,
    image_inputs,
    param_dtype,
    resolve_out_indices,
)
from modelzoo.layers.checkpointing import GradCheckpointing, run_block, run_blocks
from modelzoo.layers.tracing import graph_leaf, is_tracing
from modelzoo.registry import register_model
from modelzoo.transfer.adapt import resample_grid_embedding

__all__ = ["VisionTransformer", "Block", "PatchEmbed"]

_PAPER = (
    "Dosovitskiy et al., An Image is Worth 16x16 Words: Transformers for Image "
    "Recognition at Scale, ICLR 2021"
)


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    h, w = value
    return (int(h), int(w))


class PatchEmbed(nn.Module):
    """Cuts an image into non-overlapping patches and projects each to ``embed_dim``.

    A convolution whose kernel and stride are the patch size is the same as a
    linear layer on flattened patches, and is how timm stores the weights.
    """

    def __init__(
        self,
        img_size: tuple[int, int],
        patch_size: tuple[int, int],
        in_chans: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.grid_size = (img_size[0] // patch_size[0], img_size[1] // patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, C, gh, gw)
        return x.flatten(2).transpose(1, 2)  # (B, gh * gw, C)


class Block(nn.Module):
    """A pre-norm Transformer encoder block: attention, then MLP, each residual."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        qkv_bias: bool,
        proj_drop: float,
        attn_drop: float,
        drop_path: float,
        act_layer: type[nn.Module],
        norm_layer: type[nn.Module],
        norm_eps: float,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim, eps=norm_eps)
        self.attn = Attention(
            dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop
        )
        self.norm2 = norm_layer(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=proj_drop)
        # Parameter-free, so one instance serves both residual branches.
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@graph_leaf  # reads the input's size, which FX symbolic tracing cannot
def check_patch_multiple(x: torch.Tensor, *, model: str, patch_size: tuple[int, int]) -> None:
    """Check that an image batch's height and width are multiples of the patch size.

    Raises:
        InputShapeError: naming the sizes nearest to the input that the model takes.
    """
    ph, pw = patch_size
    h, w = x.shape[-2], x.shape[-1]
    if h % ph == 0 and w % pw == 0 and h >= ph and w >= pw:
        return
    down = (max(ph, h // ph * ph), max(pw, w // pw * pw))
    up = (-(-h // ph) * ph, -(-w // pw) * pw)
    raise InputShapeError(
        f"{model} (dynamic_img_size=True) takes images whose height is a multiple of {ph} and "
        f"width a multiple of {pw} (its patch size); got shape {tuple(x.shape)}. Resize, crop "
        f"or pad the images to e.g. {down[0]}x{down[1]} or {up[0]}x{up[1]}."
    )


@graph_leaf  # the new grid comes from the input's size
def pos_embed_for_grid(
    pos_embed: torch.Tensor,
    patches: torch.Tensor,
    grid_size: tuple[int, int],
    num_prefix_tokens: int,
) -> torch.Tensor:
    """``pos_embed``, learned for ``grid_size``, resampled to the grid of ``patches`` (B, C,
    gh, gw) (bicubic; the prefix tokens kept)."""
    new_grid = (patches.shape[-2], patches.shape[-1])
    # While exporting, resample even at the learned size: an early return would fix the
    # graph to the example input's size.
    if not is_tracing() and tuple(new_grid) == tuple(grid_size):
        return pos_embed
    return resample_grid_embedding(
        pos_embed, new_grid, grid_size, num_prefix_tokens=num_prefix_tokens
    )


class VisionTransformer(GradCheckpointing, nn.Module):
    """Vision Transformer (ViT) classifier with a class token.

    ``set_grad_checkpointing(True)`` recomputes each Transformer block in backward instead
    of storing its activations (training only; see ``modelzoo.layers.checkpointing``).

    Args:
        img_size: the (H, W) or square size of the input images, which fixes the grid of
            the learned position embedding. Other sizes raise ``InputShapeError`` unless
            ``dynamic_img_size`` is set. Pretrained weights made for another size load
            with their position embedding resampled to this grid.
        patch_size: patch side, or (h, w); must divide ``img_size``. ``feature_info``
            gives the height reduction ``h``.
        in_chans: input channels.
        num_classes: output size; 0 makes the head an identity.
        embed_dim: token width.
        depth: number of Transformer blocks.
        num_heads: attention heads; must divide ``embed_dim``.
        mlp_ratio: MLP hidden width as a multiple of ``embed_dim``.
        qkv_bias: whether the query, key and value projections have a bias.
        global_pool: ``"token"`` classifies from the class token, after the final
            norm; ``"avg"`` averages the patch tokens and normalizes the average
            (timm's ``fc_norm``), leaving the final ``norm`` an identity.
        drop_rate: dropout before the classifier (timm's meaning).
        pos_drop_rate: dropout after adding the position embedding.
        proj_drop_rate: dropout after the attention projection and both MLP layers.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth rate of the last block; it rises linearly
            from 0 at the first block.
        act_layer: MLP activation type or name.
        norm_layer: normalization type or name, called as
            ``norm_layer(embed_dim, eps=norm_eps)``.
        norm_eps: the normalization epsilon; 1e-6 as in the paper's code and timm.
        dynamic_img_size: take images of any height and width that are multiples of the
            patch size, resampling the position embedding (learned for ``img_size``) to
            each input's grid on the fly, as timm's ``dynamic_img_size``.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int | tuple[int, int] = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        global_pool: str = "token",
        drop_rate: float = 0.0,
        pos_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        act_layer: LayerType = nn.GELU,
        norm_layer: LayerType = nn.LayerNorm,
        norm_eps: float = 1e-6,
        dynamic_img_size: bool = False,
    ) -> None:
        super().__init__()
        if global_pool not in ("token", "avg"):
            raise ConfigError(f"global_pool must be 'token' or 'avg'; got {global_pool!r}")
        img_size, patch_size = _pair(img_size), _pair(patch_size)
        if img_size[0] % patch_size[0] or img_size[1] % patch_size[1]:
            raise ConfigError(
                f"patch_size={patch_size} must divide img_size={img_size}; choose sizes so "
                "that the image is an exact grid of patches"
            )
        if depth < 1:
            raise ConfigError(f"depth must be at least 1; got {depth}")
        act = get_act_layer(act_layer)
        norm = get_norm_layer(norm_layer)

        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.in_chans = in_chans
        self.img_size = img_size
        self.patch_size = patch_size
        self.default_input_size = img_size
        self.global_pool = global_pool
        self.num_prefix_tokens = 1
        self.dynamic_img_size = dynamic_img_size

        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.grid_size = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_prefix_tokens + self.patch_embed.num_patches, embed_dim)
        )
        self.pos_drop = nn.Dropout(pos_drop_rate)
        # Python arithmetic rather than torch.linspace: builders run on the meta device.
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(
            *(
                Block(
                    embed_dim,
                    num_heads,
                    mlp_ratio,
                    qkv_bias,
                    proj_drop_rate,
                    attn_drop_rate,
                    rate,
                    act,
                    norm,
                    norm_eps,
                )
                for rate in rates
            )
        )
        use_fc_norm = global_pool == "avg"
        self.norm = nn.Identity() if use_fc_norm else norm(embed_dim, eps=norm_eps)
        self.fc_norm = norm(embed_dim, eps=norm_eps) if use_fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else nn.Identity()

        reduction = patch_size[0]
        self.feature_info = [
            dict(num_chs=embed_dim, reduction=reduction, module=f"blocks.{i}") for i in range(depth)
        ]
        self._init_weights()

    def _init_weights(self) -> None:
        # timm's default: truncated normal (std 0.02) for linear layers and the
        # position embedding, a near-zero class token; convs and norms keep
        # PyTorch's defaults.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def _name(self) -> str:
        return getattr(self, "model_name", type(self).__name__)

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[Any, Any]]:
        """Tokens with positions (B, 1 + N, C) and the patch grid (gh, gw) of the input."""
        if not self.dynamic_img_size:
            check_image(
                x,
                model=self._name,
                in_chans=self.in_chans,
                size=self.img_size,
                dtype=param_dtype(self),
            )
            x = self.patch_embed(x)  # (B, N, C)
            cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, C)
            x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, 1 + N, C)
            return self.pos_drop(x), self.grid_size
        check_image(x, model=self._name, in_chans=self.in_chans, dtype=param_dtype(self))
        check_patch_multiple(x, model=self._name, patch_size=self.patch_size)
        patches = self.patch_embed.proj(x)  # (B, C, gh, gw)
        grid = (patches.shape[-2], patches.shape[-1])
        pos_embed = pos_embed_for_grid(
            self.pos_embed, patches, self.grid_size, self.num_prefix_tokens
        )
        x = patches.flatten(2).transpose(1, 2)  # (B, gh * gw, C)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, C)
        x = torch.cat([cls, x], dim=1) + pos_embed  # (B, 1 + gh * gw, C)
        return self.pos_drop(x), grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The token sequence after the last block and the final norm: (B, 1 + N, C).

        Token 0 is the class token; the rest are the patches in row-major order.
        """
        x, _ = self._embed(x)
        if self.grad_checkpointing_active():
            x = run_blocks(self.blocks, x, checkpointing=True)
        else:
            x = self.blocks(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the tokens from ``forward_features`` and classify them.

        Args:
            x: tokens of shape (B, 1 + N, C).
            pre_logits: return the pooled, normalized features (B, C) instead of logits.
        """
        if self.global_pool == "avg":
            x = x[:, self.num_prefix_tokens :].mean(dim=1)
        else:
            x = x[:, 0]
        x = self.head_drop(self.fc_norm(x))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self, x: torch.Tensor, indices: list[int] | None = None, *, norm: bool = False
    ) -> list[torch.Tensor]:
        """Outputs of the chosen blocks as feature maps (B, C, H / p, W / p).

        The class token is dropped and the patch tokens are laid back on their
        grid, the layout dense-prediction heads expect (and timm returns).

        Args:
            x: images (B, in_chans, *img_size).
            indices: block indices (negative ones count from the end); all by default.
            norm: apply the final norm to each output first.
        """
        indices = resolve_out_indices(indices, len(self.blocks), self._name)
        x, (gh, gw) = self._embed(x)
        B = x.shape[0]
        checkpointing = self.grad_checkpointing_active()
        outputs = []
        for i, block in enumerate(self.blocks[: max(indices) + 1]):
            x = run_block(block, x, checkpointing=checkpointing)
            if i in indices:
                y = self.norm(x) if norm else x
                y = y[:, self.num_prefix_tokens :]  # (B, N, C)
                outputs.append(y.reshape(B, gh, gw, -1).permute(0, 3, 1, 2))  # (B, C, gh, gw)
        return outputs

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a fresh one; 0 makes the model output (B, num_features)."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        if num_classes:
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)


def _register(**kwargs: Any) -> Any:
    return register_model(
        family="vit", task="image_classification", inputs=image_inputs, paper=_PAPER, **kwargs
    )


@_register()
def vit_tiny_patch4_32(
    *, num_classes: int = 10, in_chans: int = 3, **kwargs: Any
) -> VisionTransformer:
    """ViT-Tiny width on 32x32 images (CIFAR size) with 4x4 patches: an 8x8 grid.

    embed_dim 192, 6 blocks of 3 heads, MLP ratio 2 (about 1.8M parameters):
    half the depth and MLP width of ViT-Tiny, so it trains on small data sets.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning);
    ``pos_drop_rate``, ``proj_drop_rate``, ``attn_drop_rate`` and ``drop_path_rate`` act in the
    blocks.
    """
    model_args = dict(
        img_size=32,
        patch_size=4,
        in_chans=in_chans,
        num_classes=num_classes,
        embed_dim=192,
        depth=6,
        num_heads=3,
        mlp_ratio=2.0,
    )
    return VisionTransformer(**dict(model_args, **kwargs))


@_register()
def vit_tiny_patch16_224(
    *, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any
) -> VisionTransformer:
    """ViT-Ti/16 (DeiT-Tiny width): embed_dim 192, 12 blocks of 3 heads.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning);
    ``pos_drop_rate``, ``proj_drop_rate``, ``attn_drop_rate`` and ``drop_path_rate`` act in the
    blocks.
    """
    model_args = dict(
        img_size=224,
        patch_size=16,
        in_chans=in_chans,
        num_classes=num_classes,
        embed_dim=192,
        depth=12,
        num_heads=3,
    )
    return VisionTransformer(**dict(model_args, **kwargs))


@_register()
def vit_small_patch16_224(
    *, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any
) -> VisionTransformer:
    """ViT-S/16: embed_dim 384, 12 blocks of 6 heads.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning);
    ``pos_drop_rate``, ``proj_drop_rate``, ``attn_drop_rate`` and ``drop_path_rate`` act in the
    blocks.
    """
    model_args = dict(
        img_size=224,
        patch_size=16,
        in_chans=in_chans,
        num_classes=num_classes,
        embed_dim=384,
        depth=12,
        num_heads=6,
    )
    return VisionTransformer(**dict(model_args, **kwargs))


@_register()
def vit_base_patch16_224(
    *, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any
) -> VisionTransformer:
    """ViT-B/16 from the paper: embed_dim 768, 12 blocks of 12 heads.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning);
    ``pos_drop_rate``, ``proj_drop_rate``, ``attn_drop_rate`` and ``drop_path_rate`` act in the
    blocks.
    """
    model_args = dict(
        img_size=224,
        patch_size=16,
        in_chans=in_chans,
        num_classes=num_classes,
        embed_dim=768,
        depth=12,
        num_heads=12,
    )
    return VisionTransformer(**dict(model_args, **kwargs))
