"""Subword tokenizers (modelzoo.data.tokenizers): ids, round trips, placeholders, files."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelzoo.data.tokenizers import (
    SPECIAL_TOKENS,
    SubwordTokenizer,
    cached_tokenizer,
    find_placeholders,
)
from modelzoo.errors import ConfigError

TEXTS = [
    "Delete %(count)s items from %(name)s.",
    "Löschen Sie %(count)s Einträge aus %(name)s.",
    "Page {0} of {1}",
    "Seite {0} von {1}",
    "def add(a, b):\n    return a + b\n",
    "Save changes? 保存しますか",
] * 20

_TRAIN = """
import hashlib
from modelzoo.data.tokenizers import SubwordTokenizer
texts = {texts!r}
print(hashlib.sha256(SubwordTokenizer.train(texts, vocab_size=400).to_json().encode()).hexdigest())
"""


@pytest.fixture(scope="module")
def tok() -> SubwordTokenizer:
    return SubwordTokenizer.train(TEXTS, vocab_size=400, special_tokens=["<2de>", "<2fr>"])


def test_special_ids_match_the_seq2seq_layout(tok):
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert tok.token_to_id("<2de>") == 4 and tok.token_to_id("<2fr>") == 5
    assert tok.vocab_size <= 400


@pytest.mark.parametrize(
    "text",
    [
        "Delete %(count)s items from %(name)s.",
        "def f(x):\n\treturn  x  # two spaces\n",
        "Unseen words: Zürich, Ελληνικά, 日本語, emoji 🙂 and %(never_seen)s",
    ],
)
def test_byte_level_round_trip_is_exact(tok, text):
    ids = tok.encode(text, add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text
    assert tok.decode(ids + [tok.pad_id, 17, 18]) == text  # stops at the first eos


def test_frequent_placeholders_are_single_tokens(tok):
    for placeholder in ("%(count)s", "%(name)s", "{0}", "{1}"):
        pid = tok.token_to_id(placeholder)
        assert pid is not None, placeholder
        assert pid in tok.encode(f"x {placeholder} y"), placeholder


def test_language_tags_are_dropped_when_decoding(tok):
    ids = tok.encode("Page {0} of {1}", prefix=[tok.token_to_id("<2de>")])
    assert ids[0] == 4
    assert tok.decode(ids) == "Page {0} of {1}"
    assert tok.decode(ids, skip_special=False).startswith("<2de>")


def test_save_load_round_trip(tok, tmp_path):
    path = tok.save(tmp_path / "tokenizer.json")
    again = SubwordTokenizer.load(path)
    assert again.to_json() == tok.to_json()
    assert again.encode("Seite {0} von {1}") == tok.encode("Seite {0} von {1}")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    import pickle

    assert pickle.loads(pickle.dumps(tok)).to_json() == tok.to_json()


def test_bpe_training_is_deterministic_across_processes():
    code = _TRAIN.format(texts=TEXTS)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = {}
    exec(code.replace("print(", "result = ("), here)
    assert run.stdout.strip() == here["result"]


def test_whitespace_pre_tokenizer_marks_unknown_characters():
    tok = SubwordTokenizer.train(TEXTS, vocab_size=300, byte_level=False)
    ids = tok.encode("Delete Ω items")
    assert tok.unk_id in ids
    assert tok.decode(tok.encode("Delete %(count)s items")) == "Delete %(count)s items"


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="no texts"):
        SubwordTokenizer.train([])
    with pytest.raises(ConfigError, match="'bpe' or 'unigram'"):
        SubwordTokenizer.train(TEXTS, model="wordpiece")
    with pytest.raises(ConfigError, match="no tokenizer file"):
        SubwordTokenizer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a tokenizers JSON"):
        SubwordTokenizer.load(tmp_path / "bad.json")


def test_find_placeholders():
    text = "%(count)d of %s in {0} ({name!r}) at 100%% {{literal}} {x:>10} %.2f"
    assert find_placeholders(text) == ["%(count)d", "%s", "{0}", "{name!r}", "{x:>10}", "%.2f"]
    assert find_placeholders("100% sure, 50% done") == []


def test_cached_tokenizer_is_reused_and_survives_a_damaged_file(tmp_path):
    first = cached_tokenizer(TEXTS, cache_dir=tmp_path, vocab_size=300)
    files = list(tmp_path.glob("tokenizer-*.json"))
    assert len(files) == 1
    assert cached_tokenizer(TEXTS, cache_dir=tmp_path, vocab_size=300).to_json() == first.to_json()
    other = cached_tokenizer(TEXTS, cache_dir=tmp_path, vocab_size=350)
    assert len(list(tmp_path.glob("tokenizer-*.json"))) == 2 and other.vocab_size > 300
    files[0].write_text("{damaged")
    again = cached_tokenizer(TEXTS, cache_dir=tmp_path, vocab_size=300)
    assert again.to_json() == first.to_json() == files[0].read_text()
