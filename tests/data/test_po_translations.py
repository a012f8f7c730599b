"""po_translations: the .po extraction rules, the committed corpus, the dataset, the metrics."""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import torch
from script_helpers import load_script

from modelzoo.data import po_translations as po  # importing it registers the dataset
from modelzoo.data.registry import build_data
from modelzoo.data.tokenizers import SubwordTokenizer
from modelzoo.errors import ConfigError
from modelzoo.metrics.translation import (
    extract_placeholders,
    placeholder_preservation_rate,
    placeholder_report,
    sacrebleu_scores,
)

ROOT = Path(__file__).resolve().parents[2]

GERMAN_PO = r"""# German translation.
msgid ""
msgstr ""
"Project-Id-Version: demo\n"
"Language: de\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

msgid "Save"
msgstr "Speichern"

#, fuzzy
msgid "Delete"
msgstr "Entfernen vielleicht"

msgid "Untranslated"
msgstr ""

#, python-format
msgid "Deleted %(count)d items from %(name)s."
msgstr "%(count)d Einträge aus %(name)s gelöscht."

#, python-format
msgid "%(name)s was changed"
msgstr "wurde geändert"

msgid "%s: %s"
msgstr "%s: %s"

msgid ""
"A long help text\n"
"over   two lines."
msgstr ""
"Ein langer Hilfetext\n"
"über zwei Zeilen."

#, python-format
msgid "%(count)s page"
msgid_plural "%(count)s pages"
msgstr[0] "%(count)s Seite"
msgstr[1] "%(count)s Seiten"

msgid "Open <a href=\"{url}\">{0}</a>"
msgstr "<a href=\"{url}\">{0}</a> öffnen"

#~ msgid "Old string"
#~ msgstr "Alte Zeichenkette"
"""

# Arabic: six plural forms, and the rule picks msgstr[1] for n = 1, msgstr[3] for n = 5.
ARABIC_PO = r"""msgid ""
msgstr ""
"Language: ar\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=6; "
"plural=n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5;\n"

msgid "%(n)s file"
msgid_plural "%(n)s files"
msgstr[0] "zero %(n)s"
msgstr[1] "one %(n)s"
msgstr[2] "two %(n)s"
msgstr[3] "few %(n)s"
msgstr[4] "many %(n)s"
msgstr[5] "other %(n)s"
"""

# Japanese: one plural form, so only the singular pair is taken.
JAPANESE_PO = r"""msgid ""
msgstr ""
"Language: ja\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=1; plural=0;\n"

msgid "%(n)s file"
msgid_plural "%(n)s files"
msgstr[0] "%(n)s ファイル"
"""


@pytest.fixture(scope="module", autouse=True)
def _home(tmp_path_factory):
    """The tokenizer cache goes to a temporary MODELZOO_HOME, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELZOO_HOME", str(tmp_path_factory.mktemp("home")))
        yield


def _pairs(text: str) -> tuple[list[tuple[str, str, str]], Counter]:
    stats: Counter = Counter()
    return po.catalog_pairs(po.read_catalog(text), stats), stats


# --- extraction rules -----------------------------------------------------------------------


def test_fuzzy_obsolete_empty_and_wordless_entries_are_skipped():
    triples, stats = _pairs(GERMAN_PO)
    sources = [s for s, _, _ in triples]
    assert "Delete" not in sources  # fuzzy
    assert "Untranslated" not in sources  # empty msgstr
    assert "Old string" not in sources  # obsolete
    assert "%s: %s" not in sources  # nothing but placeholders
    assert ("Save", "Speichern", "Save") in triples
    assert stats["fuzzy"] == 1 and stats["obsolete"] == 1 and stats["no_words"] == 1
    assert stats["empty"] == 1


def test_placeholders_are_kept_and_mismatches_dropped():
    triples, stats = _pairs(GERMAN_PO)
    pairs = {s: t for s, t, _ in triples}
    assert pairs["Deleted %(count)d items from %(name)s."] == (
        "%(count)d Einträge aus %(name)s gelöscht."
    )
    assert pairs['Open <a href="{url}">{0}</a>'] == '<a href="{url}">{0}</a> öffnen'
    # The translator dropped %(name)s: software would break, so the pair is left out.
    assert "%(name)s was changed" not in pairs
    assert stats["placeholder_mismatch"] == 1


def test_whitespace_is_collapsed():
    pairs = {s: t for s, t, _ in _pairs(GERMAN_PO)[0]}
    assert pairs["A long help text over two lines."] == "Ein langer Hilfetext über zwei Zeilen."


def test_plural_forms_give_two_pairs_anchored_to_the_singular():
    triples, _ = _pairs(GERMAN_PO)
    assert ("%(count)s page", "%(count)s Seite", "%(count)s page") in triples
    assert ("%(count)s pages", "%(count)s Seiten", "%(count)s page") in triples


def test_plural_forms_follow_the_catalogs_rule():
    triples, _ = _pairs(ARABIC_PO)
    assert [(s, t) for s, t, _ in triples] == [
        ("%(n)s file", "one %(n)s"),
        ("%(n)s files", "few %(n)s"),
    ]
    triples, _ = _pairs(JAPANESE_PO)
    assert [(s, t) for s, t, _ in triples] == [("%(n)s file", "%(n)s ファイル")]


def test_language_codes_are_normalised():
    assert po.normalize_language("zh_CN") == "zh_Hans"
    assert po.normalize_language("hr_HR") == "hr"
    assert po.normalize_language("pt_BR") == "pt_BR"


def test_split_key_groups_case_and_trailing_punctuation():
    assert po.split_key("Save changes.") == po.split_key("save  changes")
    assert po.split_of("Save changes.") == po.split_of("SAVE CHANGES")


def test_build_script_reads_wheels_and_keeps_plurals_in_one_split(tmp_path):
    """A fake wheel of each project, in the real layout, through the whole build."""
    script = load_script("build_po_corpus")
    license_text = "Copyright (c) the authors.\nPermission is granted.\n"
    for project, version in (
        ("django", "5.0"),
        ("sphinx", "7.0"),
        ("wagtail", "6.0"),
        ("django_allauth", "0.6"),
    ):
        with zipfile.ZipFile(tmp_path / f"{project}-{version}-py3-none-any.whl", "w") as z:
            z.writestr(f"{project}-{version}.dist-info/LICENSE", license_text)
            if project == "django":
                z.writestr("django/conf/locale/de/LC_MESSAGES/django.po", GERMAN_PO)
                z.writestr("django/conf/locale/ar/LC_MESSAGES/django.po", ARABIC_PO)
                z.writestr("django/conf/locale/en_GB/LC_MESSAGES/django.po", GERMAN_PO)
    out = tmp_path / "out"
    assert script.main(["--wheels", str(tmp_path), "--out", str(out), "--min-pairs", "1"]) == 0
    meta = json.loads((out / po.META_FILE).read_text())
    corpus = po.load_corpus(str(out))
    assert hashlib.sha256((out / po.CORPUS_FILE).read_bytes()).hexdigest() == meta["sha256"]
    assert sorted(corpus["languages"]) == ["ar", "de"]  # en_GB is no translation
    assert {p["name"]: p["version"] for p in meta["projects"]}["django-allauth"] == "0.6"
    for project in po.PROJECTS.values():
        assert (out / project[2]).read_text() == license_text
    assert "Django 5.0" in (out / "NOTICE").read_text()
    split = dict(zip(corpus["sources"], corpus["splits"], strict=True))
    assert split["%(count)s page"] == split["%(count)s pages"]
    assert split["%(n)s file"] == split["%(n)s files"]
    # A rebuild gives the same bytes, and --check says so.
    assert (
        script.main(["--wheels", str(tmp_path), "--out", str(out), "--min-pairs", "1", "--check"])
        == 0
    )
    (out / "NOTICE").write_text("edited")
    assert (
        script.main(["--wheels", str(tmp_path), "--out", str(out), "--min-pairs", "1", "--check"])
        == 1
    )


# --- the committed corpus -------------------------------------------------------------------


def test_committed_corpus_matches_its_sha256_and_ships_its_licenses():
    meta = json.loads((po.CORPUS_DIR / po.META_FILE).read_text())
    data = (po.CORPUS_DIR / po.CORPUS_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta["sha256"] and len(data) == meta["size"]
    assert len(data) < 4 * 2**20  # the repository addition stays small
    notice = (po.CORPUS_DIR / "NOTICE").read_text()
    for name, (title, spdx, license_file) in po.PROJECTS.items():
        assert (po.CORPUS_DIR / license_file).stat().st_size > 500, license_file
        project = next(p for p in meta["projects"] if p["name"] == name)
        assert project["license"] == spdx and project["version"]
        assert f"{title} {project['version']}" in notice


def test_no_source_leaks_across_splits():
    corpus = po.load_corpus()
    sources, splits = corpus["sources"], corpus["splits"]
    assert len(set(sources)) == len(sources)
    by_key: dict[str, set[int]] = {}
    for source, split in zip(sources, splits, strict=True):
        by_key.setdefault(po.split_key(source), set()).add(split)
    assert all(len(s) == 1 for s in by_key.values())  # case variants share a split too
    train = {s for s, _ in po.text_pairs("en-de", "train")}
    test = {s for s, _ in po.text_pairs("en-fr", "test")}
    assert train and test and not train & test
    shares = Counter(splits)
    assert 0.75 < shares[0] / len(splits) < 0.85 and shares[2] > 300


def test_corpus_covers_the_main_languages_with_enough_pairs():
    corpus = po.load_corpus()
    meta = corpus["meta"]
    for lang in ("de", "fr", "es"):
        assert lang in corpus["languages"]
    for lang, pairs in corpus["languages"].items():
        assert len(pairs) >= meta["min_pairs"], lang
        assert sum(meta["pairs"][lang].values()) == len(pairs)
        # every reference keeps its source's placeholders
        for index, target in pairs[:200]:
            source = corpus["sources"][index]
            assert Counter(extract_placeholders(source)) == Counter(extract_placeholders(target))


def test_reference_sets_group_every_translation_of_a_source():
    pairs = po.text_pairs("en-de", "test")
    sources, refs = po.reference_sets("en-de", "test")
    assert len(sources) == len(set(sources)) == len({s for s, _ in pairs})
    assert all(len(stream) == len(sources) for stream in refs)
    assert sum(r is not None for stream in refs for r in stream) == len(pairs)


def test_unknown_pair_names_the_choices():
    with pytest.raises(ConfigError, match="Did you mean: en-pt, en-pt_BR"):
        po.text_pairs("en-pt_PT", "test")
    with pytest.raises(ConfigError, match="from English"):
        build_data("po_translations", pair="de-en")


# --- the dataset ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def en_de():
    return build_data("po_translations", pair="en-de", vocab_size=2000)


def test_items_are_seq2seq_token_ids_that_decode_to_the_text(en_de):
    info = en_de.info
    assert info["task"] == "seq2seq" and (info["pad_id"], info["bos_id"], info["eos_id"]) == (
        0,
        1,
        2,
    )
    assert info["vocab_size"] == info["tokenizer"].vocab_size <= 2000
    for split in (en_de.train, en_de.val, en_de.test):
        for i in range(0, len(split), 97):
            src, tgt = split[i]
            assert src[-1] == 2 and tgt[0] == 1 and tgt[-1] == 2
            assert info["decode"](src) == split.texts[i][0]
            assert info["decode"](tgt) == split.texts[i][1]
    src, tgt = en_de.collate_fn([en_de.train[0], en_de.train[1]])
    assert src.dtype == torch.long and src.shape[0] == 2


def test_tokenizer_is_trained_on_the_training_split_only(en_de):
    test_only = {s for s, _ in en_de.test.texts} - {s for s, _ in en_de.train.texts}
    assert test_only == {s for s, _ in en_de.test.texts}
    # It is BPE on the training sources (once each) and targets, and training is
    # deterministic, so the same texts give the same tokenizer.
    pairs = po.text_pairs("en-de", "train")
    seen: set[str] = set()
    texts: list[str] = []
    for source, target in pairs:
        if source not in seen:
            seen.add(source)
            texts.append(source)
        texts.append(target)
    again = SubwordTokenizer.train(texts, vocab_size=2000)
    assert again.to_json() == en_de.info["tokenizer"].to_json()


def test_frequent_placeholders_are_single_tokens(en_de):
    tok = en_de.info["tokenizer"]
    ids = tok.encode("Delete %(count)s items")
    assert tok.token_to_id("%(count)s") in ids


def test_multilingual_sources_start_with_the_language_tag():
    data = build_data(
        "po_translations",
        pair="en-multi",
        languages=["de", "fr"],
        vocab_size=2000,
        max_train_pairs=800,
    )
    tags = data.info["lang_tags"]
    assert set(tags) == {"de", "fr"}
    assert len(data.train) + data.info["dropped_long"]["train"] == 800
    tok = data.info["tokenizer"]
    for i in range(0, len(data.test), 50):
        src, _ = data.test[i]
        text = data.test.texts[i][0]
        lang = text[2 : text.index(">")]
        assert int(src[0]) == tags[lang] and tok.id_to_token(int(src[0])) == f"<2{lang}>"
    with pytest.raises(ConfigError, match="not in the corpus"):
        build_data("po_translations", pair="en-multi", languages=["xx"])


# --- metrics --------------------------------------------------------------------------------


def test_placeholder_preservation_rate():
    sources = ["Delete %(count)s items", "Hello {name}, you have %d mails", "No placeholder"]
    good = ["%(count)s Elemente löschen", "%d Mails für {name}", "Kein Platzhalter"]
    assert placeholder_preservation_rate(sources, good) == 1.0
    bad = ["Elemente löschen", "Hallo {name}, %d %d Mails", "Kein %s"]
    report = placeholder_report(sources, bad)
    assert report.rate == 0.0 and report.sentences == 2 and report.invented == 2
    assert report.recall == pytest.approx(2 / 3)
    assert math.isnan(placeholder_preservation_rate(["plain"], ["schlicht"]))
    assert extract_placeholders("100%% of %s in {{braces}} and {0}") == ["%s", "{0}"]
    with pytest.raises(ConfigError, match="one hypothesis per source"):
        placeholder_preservation_rate(sources, good[:2])


def test_sacrebleu_scores_with_several_references():
    hyps = ["the cat sat on the mat", "hello world"]
    refs = [["the cat sat on the mat", "hi world"], ["a cat sat on a mat", None]]
    scores = sacrebleu_scores(hyps, refs)
    assert 50 < scores.bleu <= 100 and 50 < scores.chrf <= 100
    assert "BLEU" in scores.bleu_signature or "nrefs" in scores.bleu_signature
    perfect = sacrebleu_scores(["a b c d e"], ["a b c d e"])
    assert perfect.bleu == pytest.approx(100.0) and perfect.chrf == pytest.approx(100.0)
