"""The embedded datasets and the loaders for user data (modelzoo.data)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from modelzoo.data import build_data, list_datasets
from modelzoo.data.seq2seq import decode_tokens
from modelzoo.data.text import decode, read_stdlib_text
from modelzoo.errors import ConfigError

SMALL = {"n_train": 200, "n_val": 50, "n_test": 50}
SYNTHETIC = {
    "adding": dict(SMALL, seq_len=30),
    "copy_memory": dict(SMALL, delay=20),
    "reverse": SMALL,
    "sort": SMALL,
    "arithmetic": SMALL,
}


def _tensors(dataset) -> list[torch.Tensor]:
    return [t for i in range(len(dataset)) for t in dataset[i]]


def _same(a, b) -> bool:
    ta, tb = _tensors(a), _tensors(b)
    return len(ta) == len(tb) and all(
        x.shape == y.shape and torch.equal(x, y) for x, y in zip(ta, tb, strict=True)
    )


# --- registry and determinism ----------------------------------------------------------------


def test_all_datasets_registered():
    expected = {
        "adding",
        "copy_memory",
        "stdlib_chars",
        "stdlib_chars_stream",
        "text_file",
        "reverse",
        "sort",
        "arithmetic",
        "image_folder",
        "csv",
        "digits",
    }
    assert expected <= set(list_datasets())


def test_unknown_keyword_names_accepted_keys():
    with pytest.raises(ConfigError, match="seq_lenn") as err:
        build_data("adding", seq_lenn=10)
    assert "seq_len" in str(err.value) and "n_train" in str(err.value)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_same_seed_same_data_other_seed_other_data(name):
    kwargs = SYNTHETIC[name]
    a, b = build_data(name, seed=3, **kwargs), build_data(name, seed=3, **kwargs)
    c = build_data(name, seed=4, **kwargs)
    for split in ("train", "val", "test"):
        assert _same(getattr(a, split), getattr(b, split)), split
        assert not _same(getattr(a, split), getattr(c, split)), split
    # A split depends on the seed alone, not on the other splits' sizes.
    d = build_data(name, seed=3, **dict(kwargs, n_train=120))
    assert _same(a.val, d.val) and _same(a.test, d.test)
    assert not _same(a.train, a.val)


# Run here and in a fresh interpreter: the data must not depend on the process.
_DIGEST = """
import hashlib
from modelzoo.data import build_data

def digest():
    h = hashlib.sha256()
    cases = [("adding", dict(n_train=64, min_len=5, max_len=20)),
             ("arithmetic", dict(n_train=64)), ("copy_memory", dict(n_train=64)),
             ("stdlib_chars_stream", dict(max_chars=20_000, batch_size=2))]
    for name, kw in cases:
        ds = build_data(name, **kw).train
        for i in range(len(ds)):
            for t in ds[i]:
                h.update(t.numpy().tobytes())
    return h.hexdigest()
"""


def test_identical_in_another_process():
    out = subprocess.run(
        [sys.executable, "-c", _DIGEST + "print(digest())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    namespace: dict = {}
    exec(_DIGEST, namespace)
    assert out.stdout.strip() == namespace["digest"]()


def test_digits_are_scikit_learns_digits_read_without_importing_it():
    from sklearn.datasets import load_digits

    from modelzoo.data.digits import load_digits_arrays

    images, labels = load_digits_arrays()
    bunch = load_digits()
    np.testing.assert_array_equal(images, (bunch.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(labels, bunch.target)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    # The CLI loads the digits in every command; importing scikit-learn would cost a second.
    code = (
        "import sys; from modelzoo.data import build_data; build_data('digits'); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- adding and copy -------------------------------------------------------------------------


def test_adding_target_is_sum_of_marked_values():
    data = build_data("adding", seq_len=30, **SMALL)
    assert data.info["input_size"] == 2 and data.info["task"] == "regression"
    x, lengths, y = data.collate_fn([data.train[i] for i in range(len(data.train))])
    assert x.shape == (200, 30, 2) and x.dtype == torch.float32
    assert lengths.dtype == torch.long and (lengths == 30).all()
    assert y.shape == (200,) and y.dtype == torch.float32
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert (markers.sum(1) == 2).all() and ((markers == 0) | (markers == 1)).all()
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    torch.testing.assert_close((values * markers).sum(1), y)


def test_adding_variable_lengths_are_padded_by_collate():
    data = build_data("adding", min_len=5, max_len=12, **SMALL)
    items = [data.train[i] for i in range(8)]
    x, lengths, y = data.collate_fn(items)
    own = torch.tensor([len(item[0]) for item in items])
    assert torch.equal(lengths, own) and 5 <= lengths.min() and lengths.max() <= 12
    assert x.shape == (8, int(own.max()), 2)
    for row, (xi, yi) in enumerate(items):
        n = len(xi)
        assert torch.equal(x[row, :n], xi) and (x[row, n:] == 0).all()
        marks = xi[:, 1].nonzero().flatten()
        assert len(marks) == 2 and marks[0] < n // 2 <= marks[1]
        torch.testing.assert_close(xi[marks, 0].sum(), yi)
    plain = build_data("adding", min_len=5, max_len=12, with_lengths=False, **SMALL)
    assert len(plain.collate_fn(items)) == 2
    with pytest.raises(ConfigError, match="min_len and max_len"):
        build_data("adding", min_len=5)


def test_copy_memory_targets_are_the_copied_symbols():
    data = build_data("copy_memory", num_symbols=5, copy_len=4, delay=7, **SMALL)
    info = data.info
    assert info["vocab_size"] == info["num_classes"] == 7 and info["seq_len"] == 2 * 4 + 7 + 1
    x, y = next(iter(DataLoader(data.train, batch_size=16, collate_fn=data.collate_fn)))
    assert x.shape == y.shape == (16, 16) and x.dtype == y.dtype == torch.long
    symbols = x[:, :4]
    assert ((symbols >= 1) & (symbols <= 5)).all()
    assert (x[:, 4:11] == info["blank_id"]).all() and (x[:, 11] == info["delimiter_id"]).all()
    assert (x[:, 12:] == info["blank_id"]).all()
    assert torch.equal(y[:, 12:], symbols) and (y[:, :12] == -100).all()
    blanks = build_data(
        "copy_memory", num_symbols=5, copy_len=4, delay=7, predict_blanks=True, **SMALL
    )
    _, yb = blanks.train[0]
    assert (yb[:12] == 0).all()


# --- text ------------------------------------------------------------------------------------


def test_stdlib_corpus_windows_shift_by_one():
    data = build_data("stdlib_chars", seq_len=64, max_chars=300_000)
    text = read_stdlib_text(300_000)
    assert len(text) > 100_000 and "def " in text and "import " in text
    assert data.info["vocab_size"] == 256 and data.info["shuffle"] is True
    x0, y0 = data.train[0]
    x1, _ = data.train[1]
    assert x0.shape == y0.shape == (64,) and x0.dtype == torch.long
    assert torch.equal(x0[1:], y0[:-1]) and y0[-1] == x1[0]
    assert text.startswith(decode(x0, data.info))
    assert len(data.val) > 0 and len(data.test) > 0
    # Contiguous 90/5/5 ranges: the test split's last window sits at the end of the text.
    assert 0.85 < len(data.train) / (len(data.train) + len(data.val) + len(data.test)) < 0.95


def test_stdlib_char_vocab_roundtrips():
    data = build_data("stdlib_chars", seq_len=32, max_chars=150_000, vocab="chars")
    itos = data.info["itos"]
    assert data.info["vocab_size"] == len(itos) == len(set(itos))
    x, y = data.train[5]
    assert int(x.max()) < len(itos)
    assert decode(x, data.info) + decode(y[-1:], data.info) in read_stdlib_text(150_000)


def test_stream_layout_continues_across_batches():
    data = build_data("stdlib_chars_stream", batch_size=4, seq_len=16, max_chars=120_000)
    assert data.info["shuffle"] is False and data.info["batch_size"] == 4
    loader = DataLoader(data.train, batch_size=4, shuffle=False)
    batches = [b for _, b in zip(range(5), loader, strict=False)]
    for (x_prev, y_prev), (x_next, _) in zip(batches, batches[1:], strict=False):
        assert x_prev.shape == (4, 16)
        assert torch.equal(x_next[:, 0], y_prev[:, -1])  # each row picks up where it stopped
    # Row b across batches is one contiguous piece of the text; rows are far apart.
    rows = [decode(torch.cat([b[0][r] for b in batches]), data.info) for r in range(4)]
    text = read_stdlib_text(120_000)
    starts = [text.find(row) for row in rows]
    assert all(s >= 0 for s in starts) and starts == sorted(starts) and starts[1] > 20_000


def test_text_file_windows_streams_and_errors(tmp_path):
    path = tmp_path / "poem.txt"
    body = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(400))
    path.write_text(body)
    data = build_data("text_file", path=str(path), seq_len=20, vocab="chars")
    x, y = data.train[3]
    assert torch.equal(x[1:], y[:-1]) and decode(x, data.info) == body[60:80]
    stream = build_data("text_file", path=str(path), seq_len=10, contiguous=True, batch_size=3)
    assert stream.info["shuffle"] is False and len(stream.train) % 3 == 0
    x0, y0 = stream.train[0]
    x3, _ = stream.train[3]  # row 0 of the second batch
    assert x3[0] == y0[-1] and decode(x0, stream.info) == body[:10]
    with pytest.raises(ConfigError, match="does not exist"):
        build_data("text_file", path=str(tmp_path / "missing.txt"))
    (tmp_path / "short.txt").write_text("abc")
    with pytest.raises(ConfigError, match="too short"):
        build_data("text_file", path=str(tmp_path / "short.txt"))


# --- seq2seq ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reverse", "sort"])
def test_symbol_tasks_decode_to_the_right_answer(name):
    data = build_data(name, num_symbols=6, min_len=2, max_len=9, **SMALL)
    info = data.info
    assert (info["pad_id"], info["bos_id"], info["eos_id"]) == (0, 1, 2)
    assert info["vocab_size"] == len(info["itos"]) == 9
    seen_lengths = set()
    for i in range(len(data.train)):
        src, tgt = data.train[i]
        assert src[-1] == 2 and tgt[0] == 1 and tgt[-1] == 2 and src.dtype == torch.long
        body = src[:-1].tolist()
        assert all(3 <= t < 9 for t in body)
        seen_lengths.add(len(body))
        want = body[::-1] if name == "reverse" else sorted(body)
        assert tgt[1:-1].tolist() == want
        assert decode_tokens(tgt, info["itos"]) == "".join(info["itos"][t] for t in want)
    assert seen_lengths == set(range(2, 10))


def test_arithmetic_answers_are_correct():
    data = build_data("arithmetic", num_digits=3, **SMALL)
    itos = data.info["itos"]
    ops = set()
    for i in range(len(data.train)):
        src, tgt = data.train[i]
        question, answer = decode_tokens(src, itos), decode_tokens(tgt, itos)
        op = "+" if "+" in question else "-"
        ops.add(op)
        a, b = question.split(op)
        assert 1 <= len(a) <= 3 and 1 <= len(b) <= 3
        assert int(answer) == (int(a) + int(b) if op == "+" else int(a) - int(b))
        assert len(src) <= data.info["max_src_len"] and len(tgt) <= data.info["max_tgt_len"]
    assert ops == {"+", "-"}
    only_add = build_data("arithmetic", ops="+", **SMALL)
    assert all("-" not in decode_tokens(only_add.train[i][0], itos) for i in range(50))


def test_seq2seq_collate_pads_to_batch_max():
    data = build_data("reverse", min_len=2, max_len=12, **SMALL)
    items = [data.train[i] for i in range(10)]
    src, tgt = data.collate_fn(items)
    assert src.dtype == tgt.dtype == torch.long
    assert src.shape == (10, max(len(s) for s, _ in items))
    assert tgt.shape == (10, max(len(t) for _, t in items))
    for row, (s, t) in enumerate(items):
        assert torch.equal(src[row, : len(s)], s) and (src[row, len(s) :] == 0).all()
        assert torch.equal(tgt[row, : len(t)], t) and (tgt[row, len(t) :] == 0).all()


# --- user data -------------------------------------------------------------------------------


def _write_images(root, sizes=((20, 20), (30, 12), (8, 8), (16, 16), (25, 25))):
    from PIL import Image

    for name, color in [("red", (255, 0, 0)), ("blue", (0, 0, 255))]:
        (root / name).mkdir(parents=True)
        for i, size in enumerate(sizes):
            Image.new("RGB", size, color).save(root / name / f"{i:02d}.png")


def test_image_folder_reads_classes_and_splits(tmp_path):
    _write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "red" / "notes.txt").write_text("not an image")
    data = build_data(
        "image_folder", root=str(tmp_path / "imgs"), img_size=16, val_fraction=0.2, seed=1
    )
    assert data.info["classes"] == ["blue", "red"] and data.info["num_classes"] == 2
    assert (len(data.train), len(data.val)) == (8, 2) and data.test is None
    for split in (data.train, data.val):
        for i in range(len(split)):
            image, label = split[i]
            assert image.shape == (3, 16, 16) and image.dtype == torch.float32
            # Red images have class "red" (index 1): channel 0 full, channel 2 empty.
            red, blue = image[0].mean().item(), image[2].mean().item()
            assert (red, blue) == ((1.0, 0.0) if label == 1 else (0.0, 1.0))
    val_labels = sorted(int(data.val[i][1]) for i in range(2))
    assert val_labels == [0, 1]  # one of each class: the split is per class
    again = build_data(
        "image_folder", root=str(tmp_path / "imgs"), img_size=16, val_fraction=0.2, seed=1
    )
    assert again.val.samples == data.val.samples
    grey = build_data("image_folder", root=str(tmp_path / "imgs"), img_size=8, in_chans=1)
    assert grey.train[0][0].shape == (1, 8, 8) and grey.info["in_chans"] == 1


def test_image_folder_errors_explain_the_layout(tmp_path):
    with pytest.raises(ConfigError, match=r"does not exist.*root/<class_name>/<image>"):
        build_data("image_folder", root=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no images.*root/<class_name>/<image>"):
        build_data("image_folder", root=str(tmp_path / "empty"))
    from PIL import Image

    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(ConfigError, match="no class subfolders"):
        build_data("image_folder", root=str(tmp_path / "flat"))


def _write_csv(path, rows, header="height,weight,species"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def test_csv_classification_and_regression(tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"{rng.normal():.4f},{rng.normal():.4f},{'cat' if i % 3 else 'dog'}" for i in range(60)]
    _write_csv(tmp_path / "pets.csv", rows)
    data = build_data("csv", path=str(tmp_path / "pets.csv"), seed=2)
    info = data.info
    assert info["task"] == "classification" and info["classes"] == ["cat", "dog"]
    assert info["in_features"] == 2 and info["feature_names"] == ["height", "weight"]
    assert len(data.train) + len(data.val) + len(data.test) == 60
    features, labels = data.train[:]
    assert features.dtype == torch.float32 and labels.dtype == torch.long
    torch.testing.assert_close(features.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    # Labels follow the rows: raw feature values recover the row, whose species is known.
    raw = build_data("csv", path=str(tmp_path / "pets.csv"), seed=2, standardize=False)
    fx, fy = raw.train[:]
    lookup = {r.rsplit(",", 1)[0]: r.rsplit(",", 1)[1] for r in rows}
    for x, y in zip(fx[:10], fy[:10], strict=True):
        assert info["classes"][int(y)] == lookup[f"{x[0].item():.4f},{x[1].item():.4f}"]

    reg_rows = [f"{i},{i * 2},{i * 0.5 + 0.25}" for i in range(40)]
    _write_csv(tmp_path / "reg.csv", reg_rows, header="a,b,y")
    reg = build_data("csv", path=str(tmp_path / "reg.csv"), standardize=False)
    assert reg.info["task"] == "regression" and "classes" not in reg.info
    x, y = reg.train[:]
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, x[:, 0] * 0.5 + 0.25)
    by_index = build_data(
        "csv", path=str(tmp_path / "reg.csv"), target_column=0, task="regression", standardize=False
    )
    assert by_index.info["target_column"] == "a" and by_index.info["feature_names"] == ["b", "y"]


def test_csv_errors_name_the_column_and_row(tmp_path):
    _write_csv(tmp_path / "bad.csv", ["1.0,2.0,cat", "1.5,heavy,dog", "2.0,3.0,cat"])
    with pytest.raises(ConfigError, match=r"column 'weight'.*row 3.*'heavy'"):
        build_data("csv", path=str(tmp_path / "bad.csv"))
    with pytest.raises(ConfigError, match=r"no column named 'label'.*height, weight, species"):
        build_data("csv", path=str(tmp_path / "bad.csv"), target_column="label")
    with pytest.raises(ConfigError, match="not a file"):
        build_data("csv", path=str(tmp_path / "missing.csv"))
    _write_csv(tmp_path / "ragged.csv", ["1,2,cat", "1,2"])
    with pytest.raises(ConfigError, match=r"row 3 .* 2 fields"):
        build_data("csv", path=str(tmp_path / "ragged.csv"))
    _write_csv(tmp_path / "text_target.csv", ["1,2,cat", "3,4,dog"])
    with pytest.raises(ConfigError, match="regression target must be numeric"):
        build_data("csv", path=str(tmp_path / "text_target.csv"), task="regression")
