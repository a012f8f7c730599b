"""The Hugging Face Hub through huggingface_hub, against a loopback stand-in of the Hub.

The stand-in (tests/weights/hub_server.py) answers the endpoints the real client calls:
model info, tree listing, HEAD/GET of ``resolve`` with ETags, ``X-Repo-Commit`` and, for
LFS files, a redirect to another origin with ``X-Linked-Etag``; and for pushing,
``validate-yaml``, ``repos/create``, ``branch``, ``preupload``, the LFS batch transfer and
``commit``. ``HF_ENDPOINT`` points at it and the cache lives in a temporary ``HF_HOME``;
nothing here touches the network.
"""

from __future__ import annotations

import argparse
import builtins
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_server import start_hub  # tests/weights is on sys.path (rootdir import mode)
from PIL import Image

import modelzoo as mz
from modelzoo.errors import (
    ConfigError,
    IntegrityError,
    OfflineError,
    UnsafeCheckpointError,
    WeightsError,
)
from modelzoo.transforms import transforms
from modelzoo.weights import fetch, read_weights, save_weights
from modelzoo.weights.hub import push_to_hub
from modelzoo.weights.pretrained import from_pretrained, policy_from_pretrained, save_pretrained

WRITER = "hf_writer_token"  # a token the stand-in lets create repos and commit
READER = "hf_reader_token"  # a token that was granted access to the gated repo
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The stand-in Hub, with HF_ENDPOINT, HF_HOME and HF_HUB_CACHE pointing at it and tmp."""
    from huggingface_hub import constants

    state, stop = start_hub()
    state.writers.add(WRITER)
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_ENDPOINT", state.endpoint)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    # What huggingface_hub read from the environment when it was imported: no stored login of
    # the user's, and its registry of agent harnesses (which it would otherwise fetch from
    # its import-time endpoint) from a fresh cache file.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    agents = home / "agent_harnesses.json"
    agents.parent.mkdir(parents=True)
    agents.write_text(json.dumps({"standardEnvVars": [], "harnesses": {}}))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(agents))
    # The stand-in stores uploads with the LFS transfer; it has no Xet storage.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    yield state
    stop()


@pytest.fixture
def writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logged in with write access (HF_TOKEN)."""
    monkeypatch.setenv("HF_TOKEN", WRITER)


def _digits() -> torch.Tensor:
    return torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))


def _small(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return mz.create("resnet20", num_classes=10, in_chans=1).eval()


def _same(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


# --- push, then load: online, offline, and as a local folder ----------------------------------


def test_a_pushed_model_loads_back_identically_online_then_offline(
    hub, writer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = mz.create("resnet20.digits").eval()
    result = push_to_hub(model, "zoo-user/resnet20-digits")
    assert result.files == ("README.md", "config.json", "model.safetensors")
    repo = hub.repos["zoo-user/resnet20-digits"]
    assert repo.branches["main"] == result.commit
    assert "model.safetensors" in repo.commits[result.commit].lfs  # uploaded through LFS
    assert hub.requests("PUT", "/lfs-upload/") and not hub.unexpected()

    # The Hub repo holds exactly what save_pretrained writes locally.
    local = save_pretrained(model, tmp_path / "local", repo_id="zoo-user/resnet20-digits")
    for name in result.files:
        assert repo.commits[result.commit].files[name] == (local / name).read_bytes(), name

    x = _digits()
    loaded = mz.create("hf-hub:zoo-user/resnet20-digits")
    assert loaded.load_report.exact
    assert loaded.load_report.source == f"hf-hub:zoo-user/resnet20-digits@{result.commit}"
    assert _same(loaded, model, x) and _same(from_pretrained(local), model, x)
    # Only config.json and the weights were fetched, the weights from the storage origin.
    fetched = {r["path"].rsplit("/", 1)[-1] for r in hub.requests("GET", "/resolve/")}
    assert fetched == {"config.json"} and hub.requests("GET", "/lfs/")
    # The card's preprocessing and class names come along.
    image = Image.fromarray(np.arange(400, dtype=np.uint8).reshape(20, 20))
    assert torch.equal(transforms(loaded)(image), transforms("resnet20.digits")(image))
    assert list(loaded.pretrained_cfg["label_names"]) == [str(i) for i in range(10)]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    asked = len(hub.log)
    again = mz.create("hf-hub:zoo-user/resnet20-digits")
    assert _same(again, model, x) and again.load_report.exact
    # predict names the classes from the card (modelzoo predict hf-hub:... image.png)
    from modelzoo.predict import predict

    expected = predict(model, image, top_k=3)
    assert predict("hf-hub:zoo-user/resnet20-digits", image, top_k=3) == expected
    assert len(hub.log) == asked  # nothing was asked of the Hub


def test_the_model_card_is_one_the_hub_reads(hub, writer, tmp_path: Path) -> None:
    from huggingface_hub import HfApi, ModelCard

    from modelzoo.weights import get_weight_set

    push_to_hub(mz.create("resnet20.digits"), "zoo-user/card")
    assert all(r["status"] == 200 for r in hub.requests("POST", "/api/validate-yaml"))
    info = HfApi(endpoint=hub.endpoint).model_info("zoo-user/card")
    assert info.library_name == "modelzoo" and "modelzoo" in info.tags

    readme = save_pretrained(mz.create("resnet20.digits"), tmp_path / "m") / "README.md"
    card = ModelCard.load(readme)
    assert card.data.license == "bsd-3-clause" and card.data.pipeline_tag == "image-classification"
    ws = get_weight_set("resnet20", "digits")
    text = card.text
    assert f"{ws.metrics['digits/test']['accuracy']:.6g}" in text  # the card's metric
    assert "epochs: 15" in text  # the recipe that made the weights
    assert "1 x 16 x 16" in text and 'mz.from_pretrained("path/to/this/folder")' in text
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["card"]["license"] == "BSD-3-Clause" and config["card"]["source"] == ws.name


def test_revisions_pin_what_is_loaded(hub, writer, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _small(1), _small(2)
    one = push_to_hub(first, "zoo-user/pinned", commit_message="first")
    push_to_hub(second, "zoo-user/pinned")
    branch = push_to_hub(first, "zoo-user/pinned", revision="v1")
    assert hub.repos["zoo-user/pinned"].commits[one.commit].message == "first"
    assert branch.revision == "v1" and hub.repos["zoo-user/pinned"].branches["v1"] == branch.commit

    x = _digits()
    cases = {
        f"hf-hub:zoo-user/pinned@{one.commit}": first,
        "hf-hub:zoo-user/pinned": second,
        "hf-hub:zoo-user/pinned@main": second,
        "hf-hub:zoo-user/pinned@v1": first,
    }
    for hub_id, expected in cases.items():
        assert _same(mz.create(hub_id), expected, x), hub_id
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # each revision resolves from the cache
    for hub_id, expected in cases.items():
        assert _same(mz.create(hub_id), expected, x), hub_id
    with pytest.raises(OfflineError, match=r"v2.*HF_HUB_OFFLINE=1"):
        mz.create("hf-hub:zoo-user/pinned@v2")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(WeightsError, match=r"no revision 'v2'"):
        mz.create("hf-hub:zoo-user/pinned@v2")


def test_weights_into_an_architecture_you_name(hub, writer) -> None:
    model = _small(3)
    push_to_hub(model, "zoo-user/weights")
    x = _digits()
    same = mz.create("resnet20", pretrained="hf-hub:zoo-user/weights")  # the repo's arguments
    assert _same(same, model, x)
    five = mz.create("resnet20", pretrained="hf-hub:zoo-user/weights", num_classes=5).eval()
    assert {r.key for r in five.load_report.reinitialized} == {"fc.weight", "fc.bias"}
    assert five.load_report.source.startswith("hf-hub:zoo-user/weights@")
    with torch.no_grad():
        assert torch.equal(five.forward_features(x), model.forward_features(x))
    with pytest.raises(ConfigError, match="pass one of them"):
        mz.create("resnet20.digits", pretrained="hf-hub:zoo-user/weights")

    from modelzoo.layers.features import FeatureListNet

    features = mz.create("hf-hub:zoo-user/weights", features_only=True, out_indices=(1, 2))
    assert features.model.load_report.exact
    with torch.no_grad():
        got, want = features.eval()(x), FeatureListNet(model, (1, 2)).eval()(x)
    assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, want))


def test_a_recorded_pretrained_cfg_rebuilds_the_same_pipeline(tmp_path: Path) -> None:
    """Every image card's preprocessing survives config.json: the same tensors come out."""
    from modelzoo.transforms import resolve_pretrained_cfg
    from modelzoo.weights import all_weight_sets
    from modelzoo.weights.pretrained import read_pretrained_config

    image = Image.fromarray((np.random.default_rng(0).random((300, 260, 3)) * 255).astype(np.uint8))
    checked = 0
    for ws in all_weight_sets():
        cfg = resolve_pretrained_cfg(ws)
        if not cfg.get("input_size"):
            continue
        stand_in = torch.nn.Linear(1, 1)  # the folder's preprocessing, not its weights
        stand_in.model_name, stand_in.init_kwargs, stand_in.pretrained_cfg = "mlp", {}, cfg
        folder = save_pretrained(stand_in, tmp_path / ws.name)
        recorded = read_pretrained_config(folder).resolved_cfg()
        assert torch.equal(transforms(recorded)(image), transforms(ws)(image)), ws.name
        assert recorded.get("label_names") == (
            list(cfg["label_names"]) if cfg.get("label_names") else None
        )
        checked += 1
    assert checked >= 30  # resnet18-152 (V1, V2), vgg11-19(_bn), every vit tag, the zoo's own


# --- single files -----------------------------------------------------------------------------


def test_fetch_one_file_of_a_repo(hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import hashlib

    model = mz.create("mlp", in_features=3, num_classes=2).eval()
    state = model.state_dict()
    data = save_weights(state, tmp_path / "w.safetensors").read_bytes()
    hub.add_repo("org/files", {"weights/model.safetensors": data, "notes.txt": b"hello"})
    path = fetch("hf-hub:org/files/weights/model.safetensors")
    assert path.name == "model.safetensors"
    assert all(torch.equal(read_weights(path)[k], v) for k, v in state.items())
    assert fetch("hf-hub:org/files@main/notes.txt").read_bytes() == b"hello"
    # One file of a repo as the weights of an architecture you name.
    one = "hf-hub:org/files/weights/model.safetensors"
    loaded = mz.create("mlp", in_features=3, num_classes=2, pretrained=one)
    assert loaded.load_report.exact and loaded.load_report.source == one
    assert _same(loaded, model, torch.rand(4, 3))
    digest = hashlib.sha256(data).hexdigest()
    assert fetch("hf-hub:org/files/weights/model.safetensors", sha256=digest) == path
    with pytest.raises(IntegrityError):
        fetch("hf-hub:org/files/weights/model.safetensors", sha256="0" * 64)
    with pytest.raises(WeightsError, match=r"org/files has no file 'missing.bin'"):
        fetch("hf-hub:org/files/missing.bin")

    # A cached file that no longer matches the sha256 the Hub gave it is refused.
    blob = path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(IntegrityError, match=r"does not match the sha256 the Hub gave it"):
        fetch("hf-hub:org/files/weights/model.safetensors")


@pytest.mark.parametrize(
    "hub_id",
    [
        "hf-hub:org",
        "hf-hub:org/re po",
        "hf-hub:../repo",
        "hf-hub:org/repo.git",
        "hf-hub:org/repo@../main",
        "hf-hub:org/repo@a b",
        "hf-hub:org/repo/../../etc/passwd",
        "hf-hub:org/repo/a\x00b",
        "hf-hub:org/repo/",
        "hf-hub:org/repo/weights/.",
    ],
)
def test_malformed_ids_are_refused_before_anything_is_asked(hub, hub_id: str) -> None:
    with pytest.raises(ConfigError):
        fetch(hub_id)
    with pytest.raises(ConfigError):
        mz.create(hub_id)
    assert hub.log == []


# --- errors -----------------------------------------------------------------------------------


def test_missing_repos_revisions_and_weights_say_what_is_missing(hub, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"no repository nobody/nothing on http://127\.0\.0\.1"):
        mz.create("hf-hub:nobody/nothing")
    hub.add_repo("org/readme-only", {"README.md": b"# nothing here\n"})
    with pytest.raises(WeightsError, match=r"holds no weights the zoo reads.*README\.md"):
        mz.create("hf-hub:org/readme-only")
    data = save_weights(_small(0).state_dict(), tmp_path / "w.safetensors").read_bytes()
    hub.add_repo("org/bare-weights", {"model.safetensors": data})
    with pytest.raises(WeightsError, match=r"no config\.json naming its architecture"):
        mz.create("hf-hub:org/bare-weights")
    assert _same(
        mz.create("resnet20", pretrained="hf-hub:org/bare-weights", num_classes=10, in_chans=1),
        _small(0),
        _digits(),
    )


def test_sharded_weights_load_and_a_hostile_index_reads_nothing(hub, tmp_path: Path) -> None:
    from safetensors.torch import save

    model = _small(7)
    state = model.state_dict()
    keys = sorted(state)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half]}
    shards["model-00002-of-00002.safetensors"] = keys[half:]
    files = {n: save({k: state[k].contiguous() for k in ks}) for n, ks in shards.items()}
    index = {"metadata": {}, "weight_map": {k: n for n, ks in shards.items() for k in ks}}
    files["model.safetensors.index.json"] = json.dumps(index).encode()
    files["config.json"] = _zoo_config(model, tmp_path)
    hub.add_repo("org/sharded", files)
    assert _same(mz.create("hf-hub:org/sharded"), model, _digits())

    index["weight_map"][keys[0]] = "../../outside.safetensors"
    files["model.safetensors.index.json"] = json.dumps(index).encode()
    hub.add_repo("org/hostile-index", files)
    with pytest.raises(WeightsError, match="not a file next to it"):
        mz.create("hf-hub:org/hostile-index")
    assert not hub.requests(contains="/org/hostile-index/resolve/main/model-0")


def test_an_unreachable_hub_falls_back_to_the_cache(
    hub, writer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = _small(8)
    push_to_hub(model, "zoo-user/cached")
    mz.create("hf-hub:zoo-user/cached")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    assert _same(mz.create("hf-hub:zoo-user/cached"), model, _digits())
    assert "cannot reach http://127.0.0.1:9" in caplog.text
    with pytest.raises(WeightsError, match=r"cannot reach .* does not hold it"):
        mz.create("hf-hub:zoo-user/never-downloaded")
    with pytest.raises(WeightsError, match=r"cannot reach http://127\.0\.0\.1:9"):
        push_to_hub(model, "zoo-user/cached")


def test_offline_without_a_cached_copy_says_how_to_get_one(
    hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"not in the Hugging Face cache .*HF_HUB_OFFLINE=1"):
        mz.create("hf-hub:org/anything")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"MODELZOO_OFFLINE=1"):
        fetch("hf-hub:org/anything/model.safetensors")
    assert hub.log == []


def test_a_gated_repo_says_to_log_in(hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = _small(4)
    save_pretrained(model, tmp_path / "m")
    files = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    hub.add_repo("org/gated", files, gated=True)
    hub.repos["org/gated"].granted.add(READER)
    with pytest.raises(WeightsError, match=r"gated.*huggingface-cli login.*HF_TOKEN") as caught:
        mz.create("hf-hub:org/gated")
    assert "org/gated" in str(caught.value)
    assert {r["status"] for r in hub.requests("HEAD", "/resolve/")} == {401}
    monkeypatch.setenv("HF_TOKEN", "hf_someone_else")  # logged in, but without access: 403
    with pytest.raises(WeightsError, match=r"gated.*token in use has no access.*accept"):
        mz.create("hf-hub:org/gated")
    monkeypatch.setenv("HF_TOKEN", READER)
    assert _same(mz.create("hf-hub:org/gated"), model, _digits())


def test_private_repos_and_pushing_need_a_login(
    hub, writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_to_hub(_small(5), "zoo-user/private", private=True)
    assert hub.repos["zoo-user/private"].private
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(WeightsError, match=r"private.*huggingface-cli login"):
        mz.create("hf-hub:zoo-user/private")
    with pytest.raises(WeightsError, match=r"not logged in.*huggingface-cli login.*HF_TOKEN"):
        push_to_hub(_small(5), "zoo-user/other")
    assert "zoo-user/other" not in hub.repos
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="needs the network"):
        push_to_hub(_small(5), "zoo-user/other", token=WRITER)


# --- pickles ----------------------------------------------------------------------------------


class _Payload:
    """Unpickling this calls ``open(path, "w")``: a file appears when the pickle runs."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def _zoo_config(model: torch.nn.Module, tmp_path: Path) -> bytes:
    return (save_pretrained(model, tmp_path / "cfg") / "config.json").read_bytes()


def test_a_malicious_pickle_is_refused_and_never_runs(hub, tmp_path: Path) -> None:
    marker = tmp_path / "the_pickle_ran"
    buffer = io.BytesIO()
    torch.save({"conv1.weight": _Payload(marker)}, buffer)
    evil = buffer.getvalue()
    model = _small(6)
    config = _zoo_config(model, tmp_path)
    hub.add_repo("evil/model", {"config.json": config, "pytorch_model.bin": evil})

    with pytest.raises(UnsafeCheckpointError, match=r"asks for io\.open .*not executed"):
        mz.create("hf-hub:evil/model")
    with pytest.raises(UnsafeCheckpointError):
        mz.create("resnet20", pretrained="hf-hub:evil/model", num_classes=10, in_chans=1)
    assert not marker.exists()

    # Beside a safetensors file the pickle is not even downloaded.
    weights = (tmp_path / "cfg" / "model.safetensors").read_bytes()
    files = {"config.json": config, "model.safetensors": weights, "pytorch_model.bin": evil}
    hub.add_repo("mixed/model", files)
    assert _same(mz.create("hf-hub:mixed/model"), model, _digits())
    assert hub.requests(contains="/mixed/model/resolve/")
    assert not hub.requests(contains="/mixed/model/resolve/main/pytorch_model.bin")
    assert not [r for r in hub.requests(contains="pytorch_model.bin") if "/mixed/" in r["path"]]
    assert not marker.exists()

    # A pickle of plain tensors loads (weights_only=True).
    plain = io.BytesIO()
    torch.save(model.state_dict(), plain)
    hub.add_repo("legacy/model", {"config.json": config, "pytorch_model.bin": plain.getvalue()})
    assert _same(mz.create("hf-hub:legacy/model"), model, _digits())

    # The payload is live: an unsafe load would have run it.
    torch.load(io.BytesIO(evil), weights_only=False)
    assert marker.exists()


# --- timm's layout ----------------------------------------------------------------------------


def _timm_repo(hub, arch: str, tag: str, tmp_path: Path) -> torch.nn.Module:
    """A repo as timm's push_to_hf_hub writes it (timm's own save_for_hf), random weights."""
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model(f"{arch}.{tag}", pretrained=False).eval()
    folder = tmp_path / f"timm-{arch}"
    save_for_hf(model, str(folder), safe_serialization=True)
    hub.add_repo(f"timm/{arch}.{tag}", {p.name: p.read_bytes() for p in folder.iterdir()})
    return model


def test_a_timm_repo_loads_into_the_native_vit(hub, tmp_path: Path) -> None:
    from timm.data import create_transform, resolve_data_config

    from modelzoo.models.vit import VisionTransformer

    reference = _timm_repo(hub, "vit_tiny_patch16_224", "augreg_in21k_ft_in1k", tmp_path)
    model = mz.create("hf-hub:timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k").eval()
    assert isinstance(model, VisionTransformer) and model.model_name == "vit_tiny_patch16_224"
    assert model.load_report.exact
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)
    # The repo's pretrained_cfg drives the preprocessing: timm's pipeline for these weights.
    assert model.pretrained_cfg["crop_pct"] == 0.9
    assert model.pretrained_cfg["interpolation"] == "bicubic"
    image = Image.fromarray((np.random.default_rng(0).random((300, 260, 3)) * 255).astype(np.uint8))
    expected = create_transform(**resolve_data_config({}, model=reference))(image)
    assert torch.allclose(transforms(model)(image), expected, atol=1e-5)

    ten = mz.create(
        "vit_tiny_patch16_224",
        pretrained="hf-hub:timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k",
        num_classes=10,
    ).eval()
    assert {r.key for r in ten.load_report.reinitialized} == {"head.weight", "head.bias"}
    with torch.no_grad():
        assert torch.allclose(ten.forward_features(x), reference.forward_features(x), atol=1e-5)
    assert "label_names" not in ten.pretrained_cfg or ten.pretrained_cfg["num_classes"] == 10


def test_a_timm_architecture_the_zoo_lacks_goes_through_the_bridge(hub, tmp_path: Path) -> None:
    reference = _timm_repo(hub, "mobilenetv3_small_050", "lamb_in1k", tmp_path)
    model = mz.create("hf-hub:timm/mobilenetv3_small_050.lamb_in1k").eval()
    assert model.model_name == "timm/mobilenetv3_small_050"
    assert type(model) is type(reference) and model.load_report.exact
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


# --- RL policies ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few PPO iterations on CartPole with observation normalisation."""
    from modelzoo.config import recipe_from_dict
    from modelzoo.train.recipes import train_recipe

    run = tmp_path_factory.mktemp("hub_rl") / "run"
    recipe = recipe_from_dict(
        {
            "model": {"name": "actor_critic", "net_arch": {"pi": [16], "vf": [16]}},
            "data": {"name": "gym", "env_id": "CartPole-v1", "num_envs": 2, "normalize_obs": True},
            "task": {"name": "ppo", "total_timesteps": 128, "n_steps": 16, "eval_episodes": 2},
            "train": {"seed": 0, "progress": False, "plots": False, "tensorboard": False},
        }
    )
    train_recipe(recipe, run)
    return run


def test_a_policy_is_pushed_and_plays_as_it_trained(
    hub, writer, cartpole_run: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelzoo.train.rl.play import load_policy, play

    result = push_to_hub(cartpole_run, "zoo-user/ppo-cartpole", license="mit")
    trained = load_policy(cartpole_run)
    pushed = policy_from_pretrained("hf-hub:zoo-user/ppo-cartpole")
    assert pushed.env_id == "CartPole-v1" and pushed.source == result.hub_id
    assert np.array_equal(pushed.obs_rms.mean, trained.obs_rms.mean)
    assert np.array_equal(pushed.obs_rms.var, trained.obs_rms.var)
    assert pushed.obs_rms.count == trained.obs_rms.count
    assert play(pushed, 3, seed=7).returns == play(trained, 3, seed=7).returns
    readme = hub.repos["zoo-user/ppo-cartpole"].commits[result.commit].files["README.md"]
    assert b"license: mit" in readme and b"CartPole-v1" in readme

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = policy_from_pretrained("hf-hub:zoo-user/ppo-cartpole")
    assert play(offline, 2, seed=3).returns == play(trained, 2, seed=3).returns

    # A card may not make loading import a module or open a file.
    folder = save_pretrained(cartpole_run, tmp_path / "policy")
    config = json.loads((folder / "config.json").read_text())
    config["card"]["recipe"]["data"]["env_id"] = "os:CartPole-v1"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="would import a module"):
        policy_from_pretrained(folder)
    with pytest.raises(ConfigError, match="is not a policy"):
        policy_from_pretrained(save_pretrained(_small(0), tmp_path / "not_a_policy"))


# --- run directories, the CLI and fine-tuning -------------------------------------------------


def _push_cli(*argv: str) -> int:
    from modelzoo.cli import push as push_cli

    parser = argparse.ArgumentParser(prog="modelzoo")
    push_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["push", *argv])
    return args.run(args)


def test_modelzoo_push_uploads_a_run_directory(hub, writer, capsys, tmp_path: Path) -> None:
    from modelzoo.predict import load_model

    run = ROOT / "tests/fixtures/run_v1"
    assert _push_cli(str(run), "zoo-user/run", "--commit-message", "the v1 run", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    commit = hub.repos["zoo-user/run"].commits[report["commit"]]
    assert commit.message == "the v1 run" and report["hub_id"].endswith(report["commit"])
    readme = commit.files["README.md"].decode()
    recorded = json.loads((run / "test_metrics.json").read_text())["accuracy"]
    assert f"| digits/test | accuracy | {recorded:.6g} |" in readme
    x = torch.rand(4, 64, generator=torch.Generator().manual_seed(0))
    assert _same(mz.create("hf-hub:zoo-user/run"), load_model(run), x)

    assert _push_cli(str(run), "zoo-user/run", "--revision", "exp", "--private") == 0
    out = capsys.readouterr().out
    assert "zoo-user/run (exp)" in out and 'modelzoo.create("hf-hub:zoo-user/run@' in out


def test_finetuning_starts_from_a_hub_repo(hub, writer) -> None:
    from modelzoo.finetune import resolve_source
    from modelzoo.finetune.run import build_model

    result = push_to_hub(mz.create("resnet20.digits"), "zoo-user/start")
    source = resolve_source("hf-hub:zoo-user/start")
    assert source.arch == "resnet20" and source.pretrained == result.hub_id
    assert source.license == "BSD-3-Clause" and source.recipe["data"]["name"] == "digits"
    model, recipe_model = build_model(source, {"num_classes": 3, "in_chans": 1})
    assert model.num_classes == 3 and recipe_model["pretrained"] == result.hub_id
    with pytest.raises(ConfigError, match="holds its own weights"):
        resolve_source("hf-hub:zoo-user/start", "digits")
