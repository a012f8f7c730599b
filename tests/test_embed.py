"""mz.embed: the latents of autoencoders, VAEs, classifiers and sequence encoders, from any
form of data, in order, with the model left as it was; and clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

import modelzoo as mz
from modelzoo.data import build_data
from modelzoo.embed import embed, embedding_kind
from modelzoo.errors import ConfigError
from modelzoo.metrics.clustering import clustering_scores, kmeans_assign


@pytest.fixture(scope="module")
def digits():
    return build_data("digits")


def test_autoencoder_latents_are_its_codes(digits) -> None:
    model = mz.create("conv_autoencoder.digits").eval()
    x = digits.test.tensors[0]
    z = embed(model, x)
    with torch.no_grad():
        assert torch.equal(z, model.encode(x))
    assert z.shape == (len(x), 16) and z.dtype == torch.float32


def test_vae_latents_are_the_posterior_means(digits) -> None:
    model = mz.create("vae.digits").eval()
    x = digits.test.tensors[0].flatten(1)
    with torch.no_grad():
        mu = model.encode(x).mu
    torch.testing.assert_close(embed(model, x), mu)  # not a sample: the same every call


def test_classifier_latents_are_the_pre_logit_features(digits) -> None:
    model = mz.create("mlp.digits").eval()
    x = digits.test.tensors[0].flatten(1)
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True)
        # the classifier's head reads exactly these
        torch.testing.assert_close(model.get_classifier()(features), model(x))
    assert embedding_kind(model) == "features"
    torch.testing.assert_close(embed(model, x), features)


def test_sequence_encoders_are_averaged_over_steps() -> None:
    torch.manual_seed(0)
    model = mz.create("transformer_seq2seq", vocab_size=20, d_model=32, num_heads=2).eval()
    tokens = torch.randint(0, 20, (3, 9))
    with torch.no_grad():
        memory = model.encode(tokens)  # (B, S, d_model)
    torch.testing.assert_close(embed(model, tokens), memory.mean(dim=1))
    lstm = mz.create("lstm_seq2seq", vocab_size=20).eval()
    with torch.no_grad():
        memory, _, _ = lstm.encode(tokens)
    torch.testing.assert_close(embed(lstm, tokens), memory.mean(dim=1))


def test_every_form_of_data_gives_the_same_rows_in_order(digits) -> None:
    model = mz.create("conv_autoencoder.digits")
    x, y = digits.test.tensors
    expected = embed(model, x, batch_size=1000)
    forms = [
        x.numpy(),
        digits.test,  # TensorDataset of (image, label)
        Subset(TensorDataset(torch.cat([x, x]), torch.cat([y, y])), range(len(x))),
        DataLoader(digits.test, batch_size=33),
        [(x[:100], y[:100]), (x[100:], y[100:])],
    ]
    for form in forms:
        torch.testing.assert_close(embed(model, form, batch_size=7), expected)
    z, labels = embed(model, digits.test, return_labels=True)
    assert torch.equal(labels, y) and torch.equal(z, expected)
    assert embed(model, x, return_labels=True)[1] is None  # bare inputs carry no labels


def test_a_name_loads_the_weights_and_the_model_is_left_as_it_was(digits) -> None:
    x = digits.test.tensors[0][:20]
    torch.testing.assert_close(
        embed("conv_autoencoder.digits", x), embed(mz.create("conv_autoencoder.digits"), x)
    )
    model = mz.create("denoising_autoencoder", img_size=8, latent_dim=4).train()
    z = embed(model, x)
    assert model.training  # restored
    with torch.no_grad():
        model.eval()
        assert torch.equal(z, model.encode(x))  # no corruption while embedding


def test_latents_of_the_shipped_autoencoder_cluster_the_digits(digits) -> None:
    """k-means on the 16-d codes finds the digit classes far above chance (NMI 0 for random
    clusters); the full comparison with PCA is in benchmarks/clustering.md."""
    model = mz.create("conv_autoencoder.digits")
    train, test = embed(model, digits.train), embed(model, digits.test)
    assigned = kmeans_assign(train.numpy(), test.numpy(), 10, seed=0)
    scores = clustering_scores(digits.test.tensors[1].numpy(), assigned)
    assert scores["nmi"] > 0.6 and scores["accuracy"] > 0.6


def test_errors_name_the_problem_and_the_fix(digits) -> None:
    with pytest.raises(ConfigError, match="no encoder to embed with.*discriminator"):
        embed(mz.create("dcgan", img_size=8, base_channels=4), torch.randn(2, 100))
    with pytest.raises(ConfigError, match="Pass one of its splits, e.g. bundle.test"):
        embed("conv_autoencoder.digits", digits)
    with pytest.raises(ConfigError, match="no inputs"):
        embed("conv_autoencoder.digits", torch.empty(0, 1, 8, 8))
    with pytest.raises(ConfigError, match="batch_size"):
        embed("conv_autoencoder.digits", digits.test, batch_size=0)
    with pytest.raises(ConfigError, match="model name"):
        embed(42, digits.test)
    with pytest.raises(ConfigError, match="DataLoader"):
        embed("conv_autoencoder.digits", {"images": np.zeros((2, 1, 8, 8))})
