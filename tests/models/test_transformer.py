"""Transformer family: torch.nn parity, KV cache, causality, padding, search, learning."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import modelzoo as mz
from modelzoo.errors import InputShapeError
from modelzoo.layers import get_act_layer
from modelzoo.layers.positional import sinusoidal_encoding
from modelzoo.models.transformer import (
    GPT,
    DecoderLayer,
    EncoderLayer,
    LMOutput,
    TransformerEncoderClassifier,
    TransformerSeq2Seq,
)


def tiny_gpt(**kwargs) -> GPT:
    args = dict(vocab_size=32, max_len=12, num_layers=2, num_heads=2, d_model=16)
    return GPT(**dict(args, **kwargs)).eval()


def tiny_seq2seq(**kwargs) -> TransformerSeq2Seq:
    args = dict(
        vocab_size=13, d_model=32, num_layers=2, num_heads=4, d_ff=64, max_len=16, drop_rate=0.0
    )
    return TransformerSeq2Seq(**dict(args, **kwargs)).eval()


# --- parity with torch.nn --------------------------------------------------------------


def _load_attention(mha: nn.MultiheadAttention, prefix: str) -> dict:
    return {
        f"{prefix}.qkv.weight": mha.in_proj_weight,
        f"{prefix}.qkv.bias": mha.in_proj_bias,
        f"{prefix}.proj.weight": mha.out_proj.weight,
        f"{prefix}.proj.bias": mha.out_proj.bias,
    }


def _common_keys(ref: nn.Module) -> dict:
    return {
        "mlp.fc1.weight": ref.linear1.weight,
        "mlp.fc1.bias": ref.linear1.bias,
        "mlp.fc2.weight": ref.linear2.weight,
        "mlp.fc2.bias": ref.linear2.bias,
        "norm1.weight": ref.norm1.weight,
        "norm1.bias": ref.norm1.bias,
        "norm2.weight": ref.norm2.weight,
        "norm2.bias": ref.norm2.bias,
    }


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("padded", [False, True])
def test_encoder_layer_matches_torch(norm_first: bool, activation: str, padded: bool) -> None:
    torch.manual_seed(0)
    dim, heads, ff = 32, 4, 64
    ref = nn.TransformerEncoderLayer(
        dim, heads, ff, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()
    with torch.no_grad():  # non-trivial norms, so a swapped norm would show
        for p in (ref.norm1.weight, ref.norm1.bias, ref.norm2.weight, ref.norm2.bias):
            p.normal_()
    ours = EncoderLayer(
        dim, heads, ff, act_layer=get_act_layer(activation), norm_first=norm_first
    ).eval()
    state = _common_keys(ref) | _load_attention(ref.self_attn, "attn")
    ours.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)

    x = torch.randn(3, 7, dim)
    pad = torch.arange(7)[None, :] >= torch.tensor([7, 4, 2])[:, None] if padded else None
    with torch.no_grad():
        expected = ref(x, src_key_padding_mask=pad)
        got = ours(x, attn_mask=None if pad is None else ~pad[:, None, None, :])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first: bool) -> None:
    torch.manual_seed(0)
    dim, heads, ff = 32, 4, 64
    ref = nn.TransformerDecoderLayer(
        dim, heads, ff, dropout=0.0, batch_first=True, norm_first=norm_first
    ).eval()
    ours = DecoderLayer(dim, heads, ff, norm_first=norm_first).eval()
    cross = ref.multihead_attn
    state = _common_keys(ref) | _load_attention(ref.self_attn, "self_attn")
    state |= {
        "norm3.weight": ref.norm3.weight,
        "norm3.bias": ref.norm3.bias,
        "cross_attn.q.weight": cross.in_proj_weight[:dim],
        "cross_attn.q.bias": cross.in_proj_bias[:dim],
        "cross_attn.kv.weight": cross.in_proj_weight[dim:],
        "cross_attn.kv.bias": cross.in_proj_bias[dim:],
        "cross_attn.proj.weight": cross.out_proj.weight,
        "cross_attn.proj.bias": cross.out_proj.bias,
    }
    ours.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)

    x, memory = torch.randn(2, 6, dim), torch.randn(2, 5, dim)
    memory_pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    with torch.no_grad():
        expected = ref(
            x,
            memory,
            tgt_mask=nn.Transformer.generate_square_subsequent_mask(6),
            tgt_is_causal=True,
            memory_key_padding_mask=memory_pad,
        )
        got = ours(x, memory, memory_mask=~memory_pad[:, None, None, :])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_gpt2_small_is_the_124m_configuration() -> None:
    # GPT-2 small as published: 124,439,808 parameters with the LM head tied to wte.
    assert mz.model_card("gpt2_small").num_params == 124_439_808
    with torch.device("meta"):
        model = mz.create("gpt2_small")
    assert model.head.weight is model.tok_embed.weight
    cfg = model.config
    assert (cfg.vocab_size, cfg.max_len, cfg.num_layers, cfg.num_heads, cfg.d_model) == (
        50257,
        1024,
        12,
        12,
        768,
    )


def test_transformer_base_counts_like_torch_transformer() -> None:
    with torch.device("meta"):
        ref = nn.Transformer(512, 8, 6, 6, 2048, batch_first=True)
        model = mz.create("transformer_base")
    # nn.Transformer always adds a final norm to each stack; the post-norm paper model has
    # none, and adds the shared (tied) embedding matrix.
    final_norms = 2 * 2 * 512
    expected = sum(p.numel() for p in ref.parameters()) - final_norms + 37000 * 512
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.head.weight is model.embed.weight


def test_sinusoidal_encoding_follows_the_paper() -> None:
    dim = 8
    enc = sinusoidal_encoding(torch.tensor([0, 3, 50]), dim)
    for row, pos in enumerate([0, 3, 50]):
        for i in range(dim // 2):
            angle = pos / 10000 ** (2 * i / dim)
            assert enc[row, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert enc[row, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


# --- language model --------------------------------------------------------------------


def test_lm_output_and_loss() -> None:
    model = tiny_gpt()
    tokens = torch.randint(0, 32, (2, 10))
    out = model(tokens)
    assert isinstance(out, LMOutput) and out.loss is None
    assert out.logits.shape == (2, 10, 32)
    targets = tokens.roll(-1, dims=1)
    targets[:, -1] = -100  # ignored
    loss = model(tokens, targets).loss
    expected = F.cross_entropy(out.logits[:, :-1].reshape(-1, 32), targets[:, :-1].reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_kv_cache_logits_equal_full_recompute() -> None:
    torch.manual_seed(0)
    model = tiny_gpt()
    tokens = torch.randint(0, 32, (2, 12))
    with torch.no_grad():
        full = model(tokens).logits
        cache = model.new_kv_cache()
        # A prompt of 5, then one token at a time, then a chunk of 3 (offset causal mask).
        pieces = [model(tokens[:, :5], kv_cache=cache).logits]
        pieces += [model(tokens[:, t : t + 1], kv_cache=cache).logits for t in range(5, 9)]
        pieces.append(model(tokens[:, 9:], kv_cache=cache).logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert len(cache[0]) == 12


@pytest.mark.parametrize("prompt_len,new", [(3, 6), (5, 15)])  # the second outgrows max_len
def test_generate_with_cache_equals_recompute(prompt_len: int, new: int) -> None:
    torch.manual_seed(0)
    model = tiny_gpt()
    prompt = torch.randint(0, 32, (3, prompt_len))
    greedy = [model.generate(prompt, new, temperature=0, use_cache=c) for c in (True, False)]
    assert torch.equal(greedy[0], greedy[1])
    assert greedy[0].shape == (3, prompt_len + new)
    assert torch.equal(greedy[0][:, :prompt_len], prompt)
    sampled = [
        model.generate(
            prompt,
            new,
            temperature=1.3,
            top_k=10,
            use_cache=c,
            generator=torch.Generator().manual_seed(7),
        )
        for c in (True, False)
    ]
    assert torch.equal(sampled[0], sampled[1])
    assert not torch.equal(sampled[0], greedy[0])  # the sampling path really sampled


def test_generate_greedy_picks_the_argmax() -> None:
    torch.manual_seed(0)
    model = tiny_gpt()
    prompt = torch.randint(0, 32, (2, 4))
    out = model.generate(prompt, 3, temperature=0)
    for t in range(4, 7):
        expected = model(out[:, :t]).logits[:, -1].argmax(-1)
        assert torch.equal(out[:, t], expected)


def test_generate_restores_training_mode() -> None:
    model = tiny_gpt(drop_rate=0.5).train()
    model.generate(torch.zeros(1, 2, dtype=torch.long), 2)
    assert model.training


def test_lm_is_causal() -> None:
    torch.manual_seed(0)
    model = tiny_gpt()
    tokens = torch.randint(0, 32, (1, 10))
    changed = tokens.clone()
    changed[0, 6] = (tokens[0, 6] + 1) % 32
    with torch.no_grad():
        a, b = model(tokens).logits, model(changed).logits
    assert torch.equal(a[:, :6], b[:, :6])  # earlier positions never see a later token
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_lm_rejects_bad_tokens() -> None:
    model = tiny_gpt()
    with pytest.raises(InputShapeError, match=r"max_len=12.*got 13"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(InputShapeError, match=r"\[0, 32\); got ids in \[0, 40\]"):
        model(torch.tensor([[0, 40]]))
    with pytest.raises(InputShapeError, match="integer token ids"):
        model(torch.zeros(1, 4))
    cache = model.new_kv_cache()
    model(torch.zeros(1, 10, dtype=torch.long), kv_cache=cache)
    with pytest.raises(InputShapeError, match="cache holds 10"):
        model(torch.zeros(1, 3, dtype=torch.long), kv_cache=cache)
    with pytest.raises(InputShapeError, match="targets"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))


def test_gpt_learns_a_repeating_pattern() -> None:
    torch.manual_seed(0)
    model = GPT(vocab_size=16, max_len=24, num_layers=2, num_heads=2, d_model=32)
    pattern = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    data = pattern.repeat(4)  # 32 tokens
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    starts = torch.arange(8)
    x = torch.stack([data[s : s + 23] for s in starts])
    y = torch.stack([data[s + 1 : s + 24] for s in starts])
    first = None
    for _ in range(150):
        loss = model(x, y).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Positions 0 and 1 cannot be predicted exactly (a "1" is followed by 4 or 5), so the
    # loss cannot reach 0; after the first few positions the pattern is deterministic.
    assert first > 2.0 and loss.item() < 0.3
    out = model.generate(pattern[None, :3], 13, temperature=0)
    assert torch.equal(out[0], data[:16])


# --- encoder classifier ----------------------------------------------------------------


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_classifier_ignores_padding(pool: str, norm_first: bool) -> None:
    torch.manual_seed(0)
    model = TransformerEncoderClassifier(
        vocab_size=50,
        num_classes=3,
        d_model=32,
        num_layers=2,
        num_heads=4,
        d_ff=64,
        max_len=16,
        pool=pool,
        norm_first=norm_first,
    ).eval()
    lengths = torch.tensor([10, 6, 3])
    tokens = torch.randint(0, 50, (3, 10))
    other = tokens.clone()
    pad = torch.arange(10)[None, :] >= lengths[:, None]
    other[pad] = torch.randint(0, 50, (int(pad.sum()),))
    with torch.no_grad():
        out = model(tokens, lengths=lengths)
        torch.testing.assert_close(model(other, lengths=lengths), out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(tokens, padding_mask=pad), out)
        for i, n in enumerate(lengths.tolist()):  # the same as the row alone, unpadded
            alone = model(tokens[i : i + 1, :n])
            torch.testing.assert_close(alone, out[i : i + 1], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(other), model(tokens))  # without the mask it matters


def test_classifier_rejects_bad_input() -> None:
    model = mz.create("transformer_encoder_classifier", max_len=8)
    with pytest.raises(InputShapeError, match=r"max_len=8.*got 9"):
        model(torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(InputShapeError, match=r"\[0, 256\); got ids in \[0, 300\]"):
        model(torch.tensor([[0, 300]]))
    with pytest.raises(InputShapeError, match=r"lengths in \[0, 4\]"):
        model(torch.zeros(2, 4, dtype=torch.long), lengths=torch.tensor([4, 5]))
    with pytest.raises(InputShapeError, match="not both"):
        tokens = torch.zeros(2, 4, dtype=torch.long)
        model(tokens, lengths=torch.tensor([4, 4]), padding_mask=tokens.bool())
    with pytest.raises(InputShapeError, match="bool tensor of shape"):
        model(torch.zeros(2, 4, dtype=torch.long), padding_mask=torch.zeros(2, 3).bool())


# --- encoder-decoder -------------------------------------------------------------------


def test_seq2seq_source_padding_does_not_change_decoder_output() -> None:
    torch.manual_seed(0)
    model = tiny_seq2seq()
    src = torch.randint(3, 13, (2, 8))
    pad = torch.arange(8)[None, :] >= torch.tensor([8, 5])[:, None]
    other = src.clone()
    other[pad] = torch.randint(3, 13, (int(pad.sum()),))
    tgt_in = torch.randint(3, 13, (2, 6))
    with torch.no_grad():
        out = model(src, tgt_in, src_padding_mask=pad)
        torch.testing.assert_close(model(other, tgt_in, src_padding_mask=pad), out)
        alone = model(src[1:, :5], tgt_in[1:])
        torch.testing.assert_close(alone, out[1:], atol=1e-5, rtol=1e-5)
        assert model(src, tgt_in).shape == (2, 6, 13)
        assert not torch.allclose(model(other, tgt_in), model(src, tgt_in))
        # Padding both ways: a padded target position does not change earlier ones.
        tgt_pad = torch.arange(6)[None, :] >= torch.tensor([6, 4])[:, None]
        padded = model(src, tgt_in, src_padding_mask=pad, tgt_padding_mask=tgt_pad)
        torch.testing.assert_close(padded[~tgt_pad], out[~tgt_pad], atol=1e-5, rtol=1e-5)


def _naive_greedy(model: TransformerSeq2Seq, src: torch.Tensor, steps: int) -> torch.Tensor:
    tgt = torch.full((len(src), 1), model.bos_id)
    for _ in range(steps):
        tgt = torch.cat([tgt, model(src, tgt)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tgt[:, 1:]


def _log_prob(model: TransformerSeq2Seq, src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Teacher-forced log p(out | src), counting tokens up to and including the first eos."""
    tgt_in = torch.cat([torch.full((len(out), 1), model.bos_id), out[:, :-1]], dim=1)
    logp = F.log_softmax(model(src, tgt_in), dim=-1).gather(-1, out[..., None])[..., 0]
    is_eos = (out == model.eos_id).long()
    before_end = (is_eos.cumsum(1) - is_eos) == 0
    return (logp * before_end).sum(dim=1)


@pytest.mark.parametrize("seed", range(4))
def test_greedy_beam1_and_beam_scores(seed: int) -> None:
    torch.manual_seed(seed)
    model = tiny_seq2seq(vocab_size=8, num_layers=1)
    src = torch.randint(3, 8, (4, 5))
    with torch.no_grad():
        greedy = model.generate(src, 8)
        # The cached greedy decoder agrees with recomputing the whole prefix each step.
        naive = _naive_greedy(model, src, 8)
        ended = (greedy == model.eos_id).long()
        upto = (ended.cumsum(1) - ended) == 0  # up to and including the first eos
        assert torch.equal(greedy[upto], naive[:, : greedy.shape[1]][upto])
        assert greedy[~upto].eq(model.pad_id).all()
        greedy_out = model.greedy_search(src, 8)
        beam1 = model.beam_search(src, 8, beam_size=1, length_penalty=0.0)
        assert torch.equal(beam1.tokens, greedy)
        torch.testing.assert_close(beam1.scores, greedy_out.scores)
        beam = model.beam_search(src, 8, beam_size=4, length_penalty=0.0)
        # The scores the searches report are the true log-probabilities of their outputs
        # (this catches a KV cache that does not follow the beams' parents).
        torch.testing.assert_close(greedy_out.scores, _log_prob(model, src, greedy))
        torch.testing.assert_close(beam.scores, _log_prob(model, src, beam.tokens))
        assert (beam.scores >= greedy_out.scores - 1e-5).all()
        assert torch.equal(model.generate(src, 8, beam_size=4, length_penalty=0.0), beam.tokens)


def test_wide_beam_finds_the_most_likely_target() -> None:
    # With beam_size = V ** (steps - 1) no prefix is ever pruned, so the search is exact:
    # it must return the most likely of all targets, found here by enumeration.
    torch.manual_seed(0)
    V, steps = 6, 3
    model = tiny_seq2seq(vocab_size=V, num_layers=1)
    src = torch.randint(3, V, (2, 4))
    every = torch.cartesian_prod(*[torch.arange(V)] * steps)  # (V**steps, steps)
    is_eos = (every == model.eos_id).long()
    after_end = (is_eos.cumsum(1) - is_eos) > 0
    every = every[~(after_end & (every != model.pad_id)).any(1)]  # pad after the end only
    with torch.no_grad():
        beam = model.generate(src, steps, beam_size=V ** (steps - 1), length_penalty=0.0)
        for i in range(len(src)):
            scores = _log_prob(model, src[i : i + 1].expand(len(every), -1), every)
            best = every[scores.argmax()]
            assert torch.equal(beam[i], best[: beam.shape[1]])
            assert best[beam.shape[1] :].eq(model.pad_id).all()


def test_seq2seq_rejects_bad_input() -> None:
    model = tiny_seq2seq()
    ok = torch.ones(1, 4, dtype=torch.long)
    with pytest.raises(InputShapeError, match=r"\(src\).*max_len=16.*got 17"):
        model(torch.ones(1, 17, dtype=torch.long), ok)
    with pytest.raises(InputShapeError, match=r"max_len=16 steps; got 20"):
        model(ok, torch.ones(1, 20, dtype=torch.long))
    with pytest.raises(InputShapeError, match=r"\(tgt_in\).*\[0, 13\); got ids in \[1, 13\]"):
        model(ok, torch.tensor([[1, 13]]))
    with pytest.raises(mz.ConfigError, match="max_len=40"):
        model.generate(ok, 40)


def test_seq2seq_learns_to_reverse() -> None:
    torch.manual_seed(0)
    vocab, length = 13, 6  # ids 0-2 are pad/bos/eos, 3-12 the symbols
    model = tiny_seq2seq(vocab_size=vocab, d_model=64, d_ff=128)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        src = torch.randint(3, vocab, (n, length), generator=gen)
        tgt = torch.cat([src.flip(1), torch.full((n, 1), model.eos_id)], dim=1)
        return src, tgt

    model.train()
    for _ in range(250):
        src, tgt = batch(64)
        tgt_in = torch.cat([torch.full((64, 1), model.bos_id), tgt[:, :-1]], dim=1)
        loss = F.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    src, tgt = batch(200)
    for beam_size in (1, 3):
        out = model.generate(src, length + 1, beam_size=beam_size)
        assert out.shape == tgt.shape
        assert (out == tgt).float().mean() >= 0.9


def test_gpt_defaults_are_gptconfig() -> None:
    # GPTConfig is the one place GPT's defaults are written: the keyword arguments of GPT are
    # its fields with its defaults, and model.config round-trips through from_config.
    from dataclasses import asdict, fields

    from modelzoo.models.transformer import GPTConfig

    params = inspect.signature(GPT.__init__).parameters
    assert [n for n in params if n != "self"] == [f.name for f in fields(GPTConfig)]
    for f in fields(GPTConfig):
        assert params[f.name].default == f.default, f.name
    model = GPT(vocab_size=40, d_model=32, num_heads=2, num_layers=1)
    assert model.config == GPTConfig(vocab_size=40, d_model=32, num_heads=2, num_layers=1)
    again = GPT.from_config(model.config)
    assert asdict(again.config) == asdict(model.config)


def test_classifier_drop_rate_is_head_dropout_as_in_timm() -> None:
    # drop_rate only drops the pooled features before the head (as in ViT and ResNet);
    # the encoder's dropout has its own keywords.
    torch.manual_seed(0)
    tokens = torch.randint(0, 256, (4, 12))
    model = mz.create(
        "transformer_encoder_classifier", drop_rate=0.5, pos_drop_rate=0.0, proj_drop_rate=0.0
    ).train()
    torch.testing.assert_close(model.forward_features(tokens), model.forward_features(tokens))
    assert not torch.equal(model(tokens), model(tokens))
    body = mz.create("transformer_encoder_classifier", drop_rate=0.0, proj_drop_rate=0.5).train()
    assert not torch.equal(body.forward_features(tokens), body.forward_features(tokens))
    assert body.blocks[0].mlp.drop1.p == 0.5 and body.head_drop.p == 0.0
