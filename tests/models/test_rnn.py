"""The recurrent family: the Recurrent layer against torch.nn, and the rnn models' behaviour."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers.recurrent import Recurrent
from modelzoo.models.rnn import (
    RecurrentLMOutput,
    RNNClassifier,
    RNNLanguageModel,
    RNNSeq2Seq,
    detach_hidden,
)

TORCH_RNNS = {"rnn_tanh": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
MODES = list(TORCH_RNNS)


def _states(state: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


# --- the Recurrent layer -------------------------------------------------------------------


def _reference(
    ref: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor | None, state: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    hx = state if len(state) == 2 else state[0]
    if lengths is None:
        out, final = ref(x, hx)
    else:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = ref(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, _states(final)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("backend", ["native", "torch"])
@pytest.mark.parametrize("mode", MODES)
def test_recurrent_matches_torch_nn(mode: str, backend: str, with_lengths: bool) -> None:
    """Same weights → same outputs, final states and gradients as nn.RNN/LSTM/GRU."""
    torch.manual_seed(0)
    ref = TORCH_RNNS[mode](5, 6, num_layers=2, bidirectional=True, batch_first=True).double()
    ours = Recurrent(mode, 5, 6, 2, bidirectional=True, backend=backend).double()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    ours.load_state_dict(ref.state_dict())

    x = torch.randn(4, 7, 5, dtype=torch.double)
    lengths = torch.tensor([7, 3, 5, 1]) if with_lengths else None
    n_state = 2 if mode == "lstm" else 1
    state = tuple(torch.randn(4, 4, 6, dtype=torch.double) for _ in range(n_state))
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    s_ref = tuple(s.clone().requires_grad_() for s in state)
    s_ours = tuple(s.clone().requires_grad_() for s in state)

    out_ref, final_ref = _reference(ref, x_ref, lengths, s_ref)
    out, final = ours(x_ours, lengths, s_ours if mode == "lstm" else s_ours[0])
    torch.testing.assert_close(out, out_ref)
    for a, b in zip(_states(final), final_ref, strict=True):
        torch.testing.assert_close(a, b)

    # A loss that weighs every output and final-state entry differently.
    def loss(o: torch.Tensor, f: tuple[torch.Tensor, ...]) -> torch.Tensor:
        g = torch.Generator().manual_seed(1)
        total = (o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum()
        for s in f:
            total = total + (s * torch.randn(s.shape, generator=g, dtype=s.dtype)).sum()
        return total

    loss(out_ref, final_ref).backward()
    loss(out, _states(final)).backward()
    for name, p in ref.named_parameters():
        torch.testing.assert_close(ours.get_parameter(name).grad, p.grad, msg=name)
    torch.testing.assert_close(x_ours.grad, x_ref.grad)
    for a, b in zip(s_ours, s_ref, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("mode", MODES)
def test_recurrent_state_dict_loads_into_torch_nn(mode: str) -> None:
    ours = Recurrent(mode, 3, 4, 2, bidirectional=True)
    ref = TORCH_RNNS[mode](3, 4, num_layers=2, bidirectional=True, batch_first=True)
    ref.load_state_dict(ours.state_dict())  # strict: same names, same shapes
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])


def test_native_padding_values_never_matter() -> None:
    layer = Recurrent("lstm", 3, 4, 2, bidirectional=True, backend="native")
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 2])
    garbage = x.clone()
    garbage[1, 2:] = 1e3
    out_a, (h_a, c_a) = layer(x, lengths)
    out_b, (h_b, c_b) = layer(garbage, lengths)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(h_a, h_b)
    torch.testing.assert_close(c_a, c_b)
    assert (out_a[1, 2:] == 0).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (cuDNN kernels)")
@pytest.mark.parametrize("mode", MODES)
def test_native_matches_cudnn(mode: str) -> None:
    torch.manual_seed(0)
    fused = Recurrent(mode, 8, 16, 2, bidirectional=True).cuda()
    native = Recurrent(mode, 8, 16, 2, bidirectional=True, backend="native").cuda()
    native.load_state_dict(fused.state_dict())
    x = torch.randn(3, 9, 8, device="cuda")
    lengths = torch.tensor([9, 4, 6])
    # TF32 would round the fused kernel's matmuls to 10-bit mantissas; compare in full fp32.
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        out_fused, final_fused = fused(x, lengths)
    out_native, final_native = native(x, lengths)
    torch.testing.assert_close(out_fused, out_native, atol=1e-5, rtol=1e-4)
    for a, b in zip(_states(final_fused), _states(final_native), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


# --- classifiers ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "native"])
@pytest.mark.parametrize(
    "name", ["rnn_classifier", "lstm_classifier", "gru_classifier"], ids=lambda n: n.split("_")[0]
)
def test_classifier_padding_invariance(name: str, backend: str) -> None:
    """A padded sequence with its length gives the output of the sequence alone."""
    torch.manual_seed(0)
    model = mz.create(
        name, vocab_size=20, embed_dim=8, hidden_size=12, num_layers=2, bidirectional=True,
        num_classes=3, backend=backend,
    ).eval()  # fmt: skip
    lengths = [5, 2, 4]
    batch = torch.zeros(3, 5, dtype=torch.long)
    alone = [torch.randint(1, 20, (1, n)) for n in lengths]
    for i, seq in enumerate(alone):
        batch[i, : seq.shape[1]] = seq
    with torch.no_grad():
        out = model(batch, torch.tensor(lengths))
        for i, seq in enumerate(alone):
            torch.testing.assert_close(out[i], model(seq)[0], atol=1e-5, rtol=1e-5)


def test_classifier_mean_pool_padding_invariance_on_features() -> None:
    torch.manual_seed(0)
    model = mz.create("gru_classifier", input_size=3, hidden_size=8, pool="mean").eval()
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        out = model(x, [6, 3])
        torch.testing.assert_close(out[1], model(x[1:, :3])[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[0], model(x[:1])[0], atol=1e-5, rtol=1e-5)


def test_classifier_head_contract() -> None:
    model = mz.create("lstm_classifier", bidirectional=True, hidden_size=16, num_classes=4).eval()
    tokens = torch.randint(0, 256, (2, 7))
    assert model.num_features == 32
    assert model(tokens).shape == (2, 4)
    assert model.get_classifier() is model.head
    assert model.forward_head(model.forward_features(tokens), pre_logits=True).shape == (2, 32)
    model.reset_classifier(0)
    assert model(tokens).shape == (2, 32)
    with pytest.raises(ConfigError, match="feature_info"):
        mz.create("lstm_classifier", features_only=True)


def _first_equals_last(g: torch.Generator, n: int) -> tuple[torch.Tensor, ...]:
    lengths = torch.randint(3, 9, (n,), generator=g)
    x = torch.zeros(n, 8, dtype=torch.long)
    for i, length in enumerate(lengths.tolist()):
        x[i, :length] = torch.randint(1, 5, (length,), generator=g)
    y = (x[:, 0] == x[torch.arange(n), lengths - 1]).long()
    return x, lengths, y


def test_lstm_classifier_learns_first_equals_last() -> None:
    """Whether a variable-length sequence ends with the token it started with: needs memory."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = mz.create("lstm_classifier", vocab_size=5, embed_dim=16, hidden_size=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(250):
        x, lengths, y = _first_equals_last(g, 64)
        loss = F.cross_entropy(model(x, lengths), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, lengths, y = _first_equals_last(g, 500)
    with torch.no_grad():
        accuracy = (model.eval()(x, lengths).argmax(-1) == y).float().mean()
    assert accuracy >= 0.9


# --- language models -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lstm_lm", "gru_lm"])
def test_lm_hidden_carry_equals_full_sequence(name: str) -> None:
    torch.manual_seed(0)
    model = mz.create(name, vocab_size=30, embed_dim=16, hidden_size=16).eval()
    tokens = torch.randint(0, 30, (2, 12))
    with torch.no_grad():
        full = model(tokens)
        first = model(tokens[:, :5])
        second = model(tokens[:, 5:], model.detach_hidden(first.hidden))
    assert isinstance(full, RecurrentLMOutput) and full._fields == ("logits", "hidden")
    torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), full.logits)
    for a, b in zip(_states(second.hidden), _states(full.hidden), strict=True):
        torch.testing.assert_close(a, b)


def test_detach_hidden_cuts_the_graph() -> None:
    model = mz.create("lstm_lm", vocab_size=30, embed_dim=16, hidden_size=16)
    h, c = model(torch.randint(0, 30, (2, 4))).hidden
    assert h.grad_fn is not None
    h2, c2 = detach_hidden((h, c))
    assert h2.grad_fn is None and c2.grad_fn is None
    torch.testing.assert_close(h2, h)


def test_weight_tying_shares_the_tensor() -> None:
    tied = mz.create("lstm_lm", vocab_size=40, embed_dim=24, hidden_size=24)
    untied = mz.create("lstm_lm", vocab_size=40, embed_dim=24, hidden_size=24, tie_weights=False)
    assert tied.decoder.weight is tied.embed.weight
    assert untied.decoder.weight is not untied.embed.weight
    n_tied = sum(p.numel() for p in tied.parameters())
    assert sum(p.numel() for p in untied.parameters()) - n_tied == 40 * 24
    # One tensor: a gradient step on the decoder moves the embedding.
    before = tied.embed.weight.detach().clone()
    out = tied(torch.randint(0, 40, (2, 5)))
    out.logits.sum().backward()
    torch.optim.SGD(tied.decoder.parameters(), lr=1.0).step()
    assert not torch.equal(tied.embed.weight, before)
    with pytest.raises(ConfigError, match="hidden_size must equal embed_dim"):
        mz.create("gru_lm", hidden_size=128)


def test_lm_greedy_generate_equals_stepwise_argmax() -> None:
    torch.manual_seed(0)
    model = mz.create("gru_lm", vocab_size=30, embed_dim=16, hidden_size=16).eval()
    prompt = torch.randint(0, 30, (3, 4))
    greedy = model.generate(prompt, 6, temperature=0)
    top1 = model.generate(prompt, 6, top_k=1)  # sampling restricted to the argmax
    tokens = prompt
    with torch.no_grad():
        for _ in range(6):  # recompute the whole prefix each step: no carried state
            tokens = torch.cat([tokens, model(tokens).logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(greedy, tokens)
    assert torch.equal(top1, tokens)


def test_lm_sampling_is_reproducible_with_a_generator() -> None:
    model = mz.create("lstm_lm", vocab_size=30, embed_dim=16, hidden_size=16).eval()
    prompt = torch.randint(0, 30, (2, 3))
    a = model.generate(prompt, 8, generator=torch.Generator().manual_seed(3))
    b = model.generate(prompt, 8, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 11) and torch.equal(a, b) and torch.equal(a[:, :3], prompt)


# --- seq2seq -------------------------------------------------------------------------------


def _small_seq2seq(mode: str = "lstm", **kwargs: object) -> RNNSeq2Seq:
    args = dict(vocab_size=12, embed_dim=16, hidden_size=32, drop_rate=0.0)
    return mz.create(f"{mode}_seq2seq", **dict(args, **kwargs)).eval()


def _score(model: RNNSeq2Seq, src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of generated rows under teacher forcing, up to the first EOS."""
    bos = torch.full((out.shape[0], 1), model.bos_id)
    with torch.no_grad():
        log_probs = model(src, torch.cat([bos, out[:, :-1]], 1)).log_softmax(-1)
    picked = log_probs.gather(-1, out[..., None])[..., 0]
    is_eos = (out == model.eos_id).long()
    scored = (is_eos.cumsum(1) - is_eos) == 0  # steps up to and including the first EOS
    return (picked * scored).sum(1)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_seq2seq_greedy_equals_stepwise_argmax(mode: str) -> None:
    torch.manual_seed(0)
    model = _small_seq2seq(mode)
    src = torch.randint(3, 12, (4, 6))
    out = model.generate(src, max_len=7)
    tgt = torch.full((4, 1), model.bos_id)
    with torch.no_grad():
        for _ in range(out.shape[1]):  # re-run the teacher-forced forward on the prefix
            tgt = torch.cat([tgt, model(src, tgt)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, tgt[:, 1:])


def test_seq2seq_beam_search() -> None:
    torch.manual_seed(0)
    model = _small_seq2seq("lstm")
    src = torch.randint(3, 12, (6, 7))
    greedy = model.generate(src, max_len=8)
    assert torch.equal(model.beam_search(src, max_len=8, beam_size=1), greedy)
    beam = model.generate(src, max_len=8, beam_size=4)
    assert beam.shape[0] == 6 and beam.shape[1] <= 8
    assert (_score(model, src, beam) >= _score(model, src, greedy) - 1e-5).all()
    with pytest.raises(ConfigError, match="beam_size"):
        model.generate(src, beam_size=13)


def _reversal(g: torch.Generator, n: int, max_len: int = 6) -> tuple[torch.Tensor, ...]:
    lengths = torch.randint(3, max_len + 1, (n,), generator=g)
    src = torch.zeros(n, max_len, dtype=torch.long)
    tgt = torch.zeros(n, max_len + 1, dtype=torch.long)  # reversed source, then EOS (2)
    for i, length in enumerate(lengths.tolist()):
        seq = torch.randint(3, 11, (length,), generator=g)
        src[i, :length] = seq
        tgt[i, :length] = seq.flip(0)
        tgt[i, length] = 2
    return src, lengths, tgt


def test_gru_seq2seq_learns_to_reverse() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = mz.create("gru_seq2seq", vocab_size=11, embed_dim=32, hidden_size=64, drop_rate=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(250):
        src, lengths, tgt = _reversal(g, 64)
        tgt_in = torch.cat([torch.full((64, 1), model.bos_id), tgt[:, :-1]], 1)
        logits = model(src, tgt_in, lengths)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=model.pad_id)
        opt.zero_grad()
        loss.backward()
        opt.step()
    src, lengths, tgt = _reversal(g, 200)
    out = model.eval().generate(src, max_len=tgt.shape[1], src_lengths=lengths)
    out = F.pad(out, (0, tgt.shape[1] - out.shape[1]), value=model.pad_id)
    target = tgt != model.pad_id  # the reversed tokens and the EOS
    accuracy = ((out == tgt) & target).sum() / target.sum()
    assert accuracy >= 0.9


# --- errors --------------------------------------------------------------------------------


def test_bad_inputs_raise_input_shape_errors() -> None:
    tokens_model = mz.create("gru_classifier", vocab_size=10, hidden_size=8)
    with pytest.raises(InputShapeError, match=r"token ids in \[0, 10\); got ids in \[0, 12\]"):
        tokens_model(torch.tensor([[0, 12, 3]]))
    with pytest.raises(InputShapeError, match=r"shape \(B, T\); got shape \(2, 3, 1\)"):
        tokens_model(torch.zeros(2, 3, 1, dtype=torch.long))
    with pytest.raises(InputShapeError, match=r"lengths of shape \(2,\).*got shape \(3,\)"):
        tokens_model(torch.zeros(2, 4, dtype=torch.long), torch.tensor([1, 2, 3]))
    with pytest.raises(InputShapeError, match=r"lengths in \[1, 4\].*got lengths in \[2, 5\]"):
        tokens_model(torch.zeros(2, 4, dtype=torch.long), torch.tensor([2, 5]))

    features_model = mz.create("rnn_classifier", input_size=3, hidden_size=8)
    with pytest.raises(InputShapeError, match=r"\(B, T, 3\); got shape \(2, 5, 4\)"):
        features_model(torch.randn(2, 5, 4))
    with pytest.raises(InputShapeError, match=r"\(B, T, 3\); got shape \(2, 5\)"):
        features_model(torch.randn(2, 5))

    lm = mz.create("lstm_lm", vocab_size=30, embed_dim=16, hidden_size=16)
    with pytest.raises(InputShapeError, match=r"token ids in \[0, 30\)"):
        lm(torch.tensor([[30]]))
    hidden = lm(torch.zeros(2, 3, dtype=torch.long)).hidden
    with pytest.raises(InputShapeError, match=r"state of shape \(2, 3, 16\).*\(2, 2, 16\)"):
        lm(torch.zeros(3, 3, dtype=torch.long), hidden)

    s2s = _small_seq2seq()
    with pytest.raises(InputShapeError, match=r"same batch size.*\(2, 5\) and \(3, 4\)"):
        s2s(torch.zeros(2, 5, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(InputShapeError, match=r"\(tgt\) expects token ids in \[0, 12\)"):
        s2s(torch.zeros(2, 5, dtype=torch.long), torch.full((2, 4), 12))


def test_bad_configs_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="either vocab_size .* or input_size"):
        RNNClassifier(vocab_size=10, input_size=3)
    with pytest.raises(ConfigError, match="needs vocab_size > 0 .* or input_size > 0"):
        RNNClassifier(vocab_size=0)
    with pytest.raises(ConfigError, match="vocab_size must be >= 1"):
        mz.create("lstm_classifier", vocab_size=0)  # the registry's range check comes first
    with pytest.raises(ConfigError, match="unknown pool"):
        mz.create("lstm_classifier", pool="max")
    with pytest.raises(ConfigError, match="unknown recurrent mode"):
        Recurrent("rnn_relu", 3, 4)
    with pytest.raises(ConfigError, match="unknown recurrent backend"):
        RNNLanguageModel(backend="cudnn")
    with pytest.raises(ConfigError, match="must be even"):
        mz.create("lstm_seq2seq", hidden_size=33)
    with pytest.raises(ConfigError, match="pad_id and eos_id must differ"):
        mz.create("gru_seq2seq", eos_id=0)
