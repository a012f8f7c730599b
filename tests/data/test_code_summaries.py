"""code_summaries: functions and first sentences read with ast, split by package."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from modelzoo.data import code_summaries as cs  # importing it registers the dataset
from modelzoo.data.registry import build_data
from modelzoo.errors import ConfigError

MODULE = '''
"""A module docstring is not a function's."""
import functools


def area(width, height):
    """Compute the area of a rectangle. Both sides must be positive."""
    return width * height


def short():
    """Too short."""
    return 1


def signature_only(x):
    """signature_only(x) -> int"""
    return x


def only_doc(a):
    """Return nothing useful at all, e.g. a placeholder.

    A second paragraph that is not the summary.
    """


def one_line(): """Do everything in one single line."""


class Shape:
    @functools.cache
    def perimeter(self, sides):
        """Sum the lengths of all sides.

        More text.
        """
        # a comment stays
        total = sum(sides)

        def helper(v):
            """Scale one value by two."""
            return v * 2

        return total
'''


def _fake_stdlib(root: Path) -> Path:
    """Five packages of different sizes, a test folder, a test module, a broken file."""
    for package, count in (("alpha", 6), ("beta", 4), ("gamma", 3), ("delta", 2), ("eps", 5)):
        pkg = root / package
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        for i in range(count):
            (pkg / f"mod{i}.py").write_text(MODULE)
    (root / "alpha" / "tests").mkdir()
    (root / "alpha" / "tests" / "helpers.py").write_text(MODULE)
    (root / "test_toplevel.py").write_text(MODULE)
    (root / "idlelib" / "idle_test").mkdir(parents=True)
    (root / "idlelib" / "idle_test" / "x.py").write_text(MODULE)
    (root / "broken.py").write_text("def f(:\n")
    (root / "site-packages").mkdir()
    (root / "site-packages" / "third.py").write_text(MODULE)
    return root


@pytest.fixture
def stdlib(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "home"))
    cs.stdlib_functions.cache_clear()
    return _fake_stdlib(tmp_path / "lib")


def test_first_sentence():
    assert cs.first_sentence("Compute the area. More.") == "Compute the area."
    assert cs.first_sentence("Use a list, e.g. [1, 2]. Then stop.") == "Use a list, e.g. [1, 2]."
    assert cs.first_sentence("Spans\n   two lines\nuntil here.\n\nOther.") == (
        "Spans two lines until here."
    )
    assert cs.first_sentence("No final period") == "No final period"


def test_docstring_is_removed_and_the_rest_kept():
    examples = {e.qualname: e for e in cs.extract_functions(MODULE, "m")}
    assert set(examples) == {
        "area",
        "only_doc",
        "one_line",
        "Shape.perimeter",
        "Shape.perimeter.helper",
    }
    area = examples["area"]
    assert area.summary == "Compute the area of a rectangle."
    assert area.source == "def area(width, height):\n    return width * height"
    perimeter = examples["Shape.perimeter"]
    assert perimeter.summary == "Sum the lengths of all sides."
    assert perimeter.source.startswith("def perimeter(self, sides):\n    # a comment stays")
    assert "Sum the lengths" not in perimeter.source and "@functools" not in perimeter.source
    assert '"""Scale one value by two."""' in perimeter.source  # only its own docstring goes
    # A function that was only a docstring still parses, with pass as its body.
    assert examples["only_doc"].source == "def only_doc(a):\n    pass"
    assert examples["one_line"].source == "def one_line(): pass"
    for example in examples.values():
        ast.parse(example.source)
        assert example.summary not in example.source


def test_test_code_and_site_packages_are_left_out(stdlib):
    examples = cs.stdlib_functions(str(stdlib))
    modules = {e.module for e in examples}
    assert all(m.split(".")[0] in {"alpha", "beta", "gamma", "delta", "eps"} for m in modules)
    assert len(examples) == 5 * (6 + 4 + 3 + 2 + 5)


def test_split_by_package_and_by_module_never_shares_a_group(stdlib):
    for split_by in ("package", "module"):
        data = build_data(
            "code_summaries",
            stdlib=str(stdlib),
            vocab_size=400,
            split_by=split_by,
            val_fraction=0.2,
            test_fraction=0.2,
        )
        groups = {}
        for split in ("train", "val", "test"):
            dataset = getattr(data, split)
            names = {
                e.module.split(".")[0] if split_by == "package" else e.module
                for e in dataset.examples
            }
            assert names, split
            groups[split] = names
        assert not groups["train"] & groups["test"]
        assert not groups["train"] & groups["val"] and not groups["val"] & groups["test"]
        assert data.info["groups"] == {s: len(g) for s, g in groups.items()}
        modules = {s: {e.module for e in getattr(data, s).examples} for s in groups}
        assert not modules["train"] & modules["test"]


def test_items_decode_to_the_code_and_the_summary(stdlib):
    data = build_data("code_summaries", stdlib=str(stdlib), vocab_size=400, max_src_len=512)
    info = data.info
    assert info["python_version"].count(".") == 2 and len(info["corpus_sha256"]) == 64
    assert info["vocab_size"] == info["tokenizer"].vocab_size
    for split in (data.train, data.val, data.test):
        for i in range(len(split)):
            src, tgt = split[i]
            assert src[-1] == info["eos_id"] and tgt[0] == info["bos_id"]
            assert info["decode"](src) == split.texts[i][0]
            assert info["decode"](tgt) == split.texts[i][1]
    # Cut long sources at max_src_len, eos kept.
    short = build_data("code_summaries", stdlib=str(stdlib), vocab_size=400, max_src_len=10)
    src, _ = short.train[0]
    assert len(src) == 10 and src[-1] == info["eos_id"]


def test_same_seed_same_split_other_seed_other_split(stdlib):
    kw = dict(stdlib=str(stdlib), vocab_size=400, val_fraction=0.2, test_fraction=0.2)
    a = build_data("code_summaries", **kw, seed=0).info["test_groups"]
    b = build_data("code_summaries", **kw, seed=0).info["test_groups"]
    others = {
        tuple(build_data("code_summaries", **kw, seed=s).info["test_groups"]) for s in range(1, 6)
    }
    assert a == b and others - {tuple(a)}


def test_extraction_is_cached_and_renewed_when_a_file_changes(stdlib, tmp_path):
    first = cs.stdlib_functions(str(stdlib))
    cached = list((tmp_path / "home" / "data" / "code_summaries").glob("functions-*.json"))
    assert len(cached) == 1
    cs.stdlib_functions.cache_clear()
    assert cs.stdlib_functions(str(stdlib)) == first  # read back from the file
    (stdlib / "beta" / "extra.py").write_text(
        textwrap.dedent('''
        def added():
            """Return a brand new value."""
            return 2
    ''')
    )
    cs.stdlib_functions.cache_clear()
    assert len(cs.stdlib_functions(str(stdlib))) == len(first) + 1


def test_bad_options_raise_config_error(stdlib):
    with pytest.raises(ConfigError, match="split_by"):
        build_data("code_summaries", stdlib=str(stdlib), split_by="file")
    with pytest.raises(ConfigError, match="does not exist"):
        build_data("code_summaries", stdlib=str(stdlib / "nowhere"))


@pytest.mark.slow
def test_real_standard_library():
    data = build_data("code_summaries")
    sizes, info = data.info["sizes"], data.info
    assert sum(sizes.values()) > 5000 and min(sizes.values()) > 300
    train = {e.module.split(".")[0] for e in data.train.examples}
    assert not train & set(info["test_groups"])
