"""Autoencoders: shapes, encode/decode, train/eval behaviour, corruption, errors, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.autoencoder import AEOutput, Corruption, VAEOutput


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits as 64-feature vectors in [0, 1]: a train and a test split."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data, dtype=torch.float32) / 16.0
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm[:1400]], x[perm[1400:]]


@pytest.mark.parametrize("img_size", [8, 16, 28, 32, (12, 20), 7])
@pytest.mark.parametrize("name", ["conv_autoencoder", "conv_vae"])
def test_conv_encode_decode_shapes(name, img_size):
    model = mz.create(name, img_size=img_size, in_chans=3, latent_dim=6, channels=(4, 8)).eval()
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    assert model.img_size == (h, w) and model.in_chans == 3 and model.latent_dim == 6
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        code = model.encode(x)
        out = model(x)
    if name == "conv_vae":
        assert code.mu.shape == code.logvar.shape == (2, 6)
        assert isinstance(out, VAEOutput)
        z = code.mu
    else:
        assert code.shape == (2, 6)
        assert isinstance(out, AEOutput)
        z = code
    assert model.decode(z).shape == (2, 3, h, w)
    assert out.recon.shape == x.shape


@pytest.mark.parametrize("name", ["mlp_autoencoder", "conv_autoencoder", "denoising_autoencoder"])
def test_forward_is_decode_of_encode_in_eval(name):
    model = mz.create(name).eval()
    x = torch.rand(3, 1, 28, 28) if name != "mlp_autoencoder" else torch.rand(3, 784)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(out.latent, model.encode(x))
        torch.testing.assert_close(out.recon, model.decode(out.latent).reshape(x.shape))
    assert out.latent.shape == (3, 32)
    assert out.recon.min() >= 0 and out.recon.max() <= 1  # sigmoid outputs
    assert model.output_range == (0.0, 1.0)


def test_mlp_autoencoder_takes_images_and_keeps_their_shape():
    model = mz.create("mlp_autoencoder", in_features=64, latent_dim=4).eval()
    images = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        out = model(images)
        flat = model(images.reshape(5, 64))
    assert out.recon.shape == (5, 1, 8, 8)
    assert model.decode(out.latent).shape == (5, 64)
    torch.testing.assert_close(out.recon.reshape(5, 64), flat.recon)


def test_output_activation_option():
    x = torch.rand(4, 64)
    logits = mz.create("mlp_autoencoder", in_features=64, out_act="identity").eval()
    tanh = mz.create("mlp_autoencoder", in_features=64, out_act="tanh").eval()
    tanh.load_state_dict(logits.state_dict())
    assert logits.output_range is None and tanh.output_range == (-1.0, 1.0)
    with torch.no_grad():
        torch.testing.assert_close(tanh(x).recon, torch.tanh(logits(x).recon))


def test_vae_eval_is_deterministic_and_decodes_the_mean():
    model = mz.create("vae", in_features=64, latent_dim=5).eval()
    x = torch.rand(4, 64)
    with torch.no_grad():
        a, b = model(x), model(x)
        torch.testing.assert_close(a.recon, model.decode(a.mu))
    assert a.mu.shape == a.logvar.shape == (4, 5) and a.recon.shape == (4, 64)
    for ta, tb in zip(a, b, strict=True):
        assert torch.equal(ta, tb)


@pytest.mark.parametrize("name", ["vae", "conv_vae"])
def test_vae_train_mode_samples_z_and_passes_gradients_to_logvar(name):
    if name == "conv_vae":
        model, x = mz.create(name, img_size=8, channels=(4, 8)), torch.rand(4, 1, 8, 8)
    else:
        model, x = mz.create(name, in_features=64), torch.rand(4, 64)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a.recon, b.recon)  # a fresh z each call
    torch.testing.assert_close(a.mu, b.mu)
    torch.testing.assert_close(a.logvar, b.logvar)
    # The reparameterization trick: the reconstruction alone trains the variance head.
    a.recon.sum().backward()
    assert model.fc_logvar.weight.grad is not None and model.fc_logvar.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["vae", "conv_vae"])
def test_vae_sample(name):
    model = mz.create(name, img_size=16) if name == "conv_vae" else mz.create(name)
    model.eval()
    samples = model.sample(6)
    assert samples.shape == ((6, 1, 16, 16) if name == "conv_vae" else (6, 784))
    assert samples.min() >= 0 and samples.max() <= 1
    again = [model.sample(3, generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(again[0], again[1])
    assert not torch.equal(again[0], model.sample(3, generator=torch.Generator().manual_seed(8)))


def test_denoising_corrupts_only_in_training():
    dae = mz.create("denoising_autoencoder", img_size=8, channels=(4, 8))
    plain = mz.create("conv_autoencoder", img_size=8, channels=(4, 8))
    plain.load_state_dict(dae.state_dict())  # same architecture, same keys
    assert dae.corrupt.noise == "masking" and dae.corrupt.noise_level == 0.25
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        dae.eval(), plain.eval()
        clean = plain(x)
        for got, want in zip(dae(x), clean, strict=True):
            assert torch.equal(got, want)
        # Training mode, where batch norm uses batch statistics in both models.
        dae.train(), plain.train()
        assert not torch.allclose(dae(x).recon, plain(x).recon)


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_pepper"])
def test_corruption_types(noise):
    torch.manual_seed(0)
    corrupt = Corruption(noise, 0.3, value_range=(0.0, 1.0))
    x = torch.rand(200, 100) * 0.5 + 0.25  # strictly inside (0, 1)
    assert torch.equal(corrupt.eval()(x), x)
    noisy = corrupt.train()(x)
    changed = noisy != x
    if noise == "gaussian":
        assert changed.all()
        assert abs((noisy - x).std().item() - 0.3) < 0.02
    else:
        assert abs(changed.float().mean().item() - 0.3) < 0.02
        want = {0.0} if noise == "masking" else {0.0, 1.0}
        assert set(noisy[changed].unique().tolist()) == want


def test_noise_options_reach_the_model():
    model = mz.create("mlp_autoencoder", in_features=64, noise="gaussian", noise_level=0.5)
    assert model.corrupt.noise == "gaussian" and model.corrupt.noise_level == 0.5
    x = torch.rand(4, 64)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).recon, model(x).recon)
        model.train()
        assert not torch.equal(model(x).recon, model(x).recon)
    with pytest.raises(ConfigError, match="unknown noise 'speckle'.*gaussian, masking"):
        mz.create("denoising_autoencoder", noise="speckle")
    with pytest.raises(ConfigError, match=r"probability in \[0, 1\]"):
        mz.create("denoising_autoencoder", noise_level=1.5)


def test_builds_on_meta_device():
    with torch.device("meta"):
        model = mz.create("conv_vae", img_size=32, in_chans=3)
    assert all(p.is_meta for p in model.parameters())


def test_errors_name_expected_and_actual_shape():
    conv = mz.create("conv_autoencoder")
    with pytest.raises(InputShapeError, match=r"\(B, 1, 28, 28\).*\(2, 1, 32, 32\).*img_size=32"):
        conv(torch.rand(2, 1, 32, 32))
    with pytest.raises(InputShapeError, match=r"\(B, 1, 28, 28\).*3 channels.*in_chans=3"):
        conv(torch.rand(2, 3, 28, 28))
    with pytest.raises(InputShapeError, match=r"unsqueeze"):
        conv(torch.rand(1, 28, 28))
    with pytest.raises(
        InputShapeError, match=r"decode expects latents of shape \(B, 32\).*\(2, 8\)"
    ):
        conv.decode(torch.randn(2, 8))
    with pytest.raises(InputShapeError, match=r"\(B, 784\).*\(2, 64\)"):
        mz.create("vae")(torch.rand(2, 64))
    with pytest.raises(InputShapeError, match=r"\(B, 20\).*\(3, 784\)"):
        mz.create("vae").decode(torch.rand(3, 784))
    with pytest.raises(ConfigError, match="channels needs at least one"):
        mz.create("conv_vae", channels=())


def test_autoencoder_learns_digits(one_thread):
    x_tr, x_te = _digits()
    mean_image_mse = ((x_te - x_tr.mean(0)) ** 2).mean().item()
    for name, kwargs, shape in [
        ("mlp_autoencoder", dict(in_features=64, latent_dim=8, hidden_sizes=(64,)), (-1, 64)),
        ("conv_autoencoder", dict(img_size=8, latent_dim=8, channels=(8, 16)), (-1, 1, 8, 8)),
    ]:
        torch.manual_seed(0)
        model = mz.create(name, **kwargs).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        generator = torch.Generator().manual_seed(0)
        for _ in range(150):
            batch = x_tr[torch.randint(0, len(x_tr), (128,), generator=generator)].reshape(shape)
            loss = F.mse_loss(model(batch).recon, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            test = x_te.reshape(shape)
            mse = F.mse_loss(model(test).recon, test).item()
        assert mse < 0.5 * mean_image_mse, (name, mse, mean_image_mse)


def _negative_elbo(model, x: torch.Tensor) -> torch.Tensor:
    """Single-sample estimate, per image: Bernoulli reconstruction term plus KL to N(0, I)."""
    out = model(x)
    recon = F.binary_cross_entropy(out.recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + out.logvar - out.mu.pow(2) - out.logvar.exp())
    return (recon + kl) / len(x)


def test_vae_elbo_improves_on_digits(one_thread):
    x_tr, x_te = _digits()
    torch.manual_seed(0)
    model = mz.create("vae", in_features=64, latent_dim=4, hidden_sizes=(64,)).train()

    def held_out() -> float:
        torch.manual_seed(1)  # the same z noise before and after training
        with torch.no_grad():
            return _negative_elbo(model, x_te).item()

    before = held_out()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        loss = _negative_elbo(model, x_tr[torch.randint(0, len(x_tr), (128,), generator=generator)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = held_out()
    # An untrained decoder predicts ~0.5 everywhere: 64 * log 2 = 44 nats per image.
    assert after < 0.75 * before, (before, after)
