"""Code summarization: Python functions of the standard library and their one-line summaries.

Every function (``def`` and ``async def``, methods and nested functions included) of the
running interpreter's standard library whose docstring's first sentence has at least
``min_words`` words becomes one example: the input is the function's source with its
own docstring removed (dedented, decorators left out, comments and nested functions'
docstrings kept), the target is that first sentence. Nothing is copied into the
repository: the examples are read at run time with :mod:`ast` from
``sysconfig.get_paths()["stdlib"]``, so another Python version gives another (similar)
corpus; ``info["python_version"]`` and ``info["corpus_sha256"]`` say which one a model
saw.

Left out: test code (any folder named ``test``, ``tests``, ``idle_test`` or ``test_*``,
and ``test_*.py`` files), ``site-packages``, files that do not parse, and functions
whose docstring is only a signature line (C-style ``f(x) -> y``).

Splits are **by package** (the top-level module: ``email``, ``asyncio``, ``json``, ...;
or by full module with ``split_by="module"``): every function of a package is in one
split, so test functions come from code never seen in training. Packages are ordered by
a hash of ``(seed, name)`` and dealt out until val and test each hold about ``val_fraction``
and ``test_fraction`` of the functions; the rest train.

Tokens are byte-level BPE (:class:`modelzoo.data.tokenizers.SubwordTokenizer`) with one
vocabulary for code and summaries, trained on the training split only. Items are
``(src, tgt)`` int64 vectors in ``modelzoo.data.seq2seq``'s layout (``src ... <eos>``,
``<bos> tgt ... <eos>``), so the seq2seq task and models train on it unchanged.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import os
import platform
import re
import sysconfig
import textwrap
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from modelzoo.data.po_translations import TranslationPairs
from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.data.seq2seq import BOS_ID, EOS_ID, PAD_ID, collate_seq2seq
from modelzoo.data.tokenizers import SubwordTokenizer, cached_tokenizer
from modelzoo.errors import ConfigError
from modelzoo.utils.io import atomic_write_text

__all__ = [
    "FunctionExample",
    "code_summaries",
    "extract_functions",
    "first_sentence",
    "split_modules",
    "stdlib_functions",
]

_logger = logging.getLogger(__name__)

_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}
_SPLITS = ("train", "val", "test")
# Abbreviations whose period does not end a sentence.
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "resp.", "Mr.", "Dr.", "No.")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_SIGNATURE_LINE = re.compile(r"^[\w.]+\(.*\)(\s*->.*)?$")  # "name(arg, ...) -> result"


@dataclass(frozen=True)
class FunctionExample:
    """One function: ``source`` without its docstring, ``summary`` its first sentence."""

    module: str  # dotted module name, e.g. "email.mime.text"
    qualname: str  # e.g. "Message.get_payload"
    source: str
    summary: str


def first_sentence(docstring: str) -> str:
    """The first sentence of a docstring's first paragraph, whitespace collapsed.

    A sentence ends at ``.``, ``!`` or ``?`` followed by whitespace (not after ``e.g.``,
    ``i.e.`` and similar) or at the paragraph's end; a trailing colon is kept as it is.
    """
    paragraph = re.split(r"\n\s*\n", docstring.strip(), maxsplit=1)[0]
    text = " ".join(paragraph.split())
    start = 0
    for match in _SENTENCE_END.finditer(text):
        head = text[start : match.start()]
        if head.endswith(_ABBREVIATIONS):
            continue
        return text[: match.start()]
    return text


def _remove_docstring(lines: list[str], node: ast.AST, doc: ast.Expr) -> list[str]:
    """The function's lines (``node.lineno`` first) without the docstring expression.

    Offsets in ``ast`` are UTF-8 byte columns, so the cut is made on encoded lines.
    """
    first = node.lineno
    d0, d1 = doc.lineno - first, doc.end_lineno - first
    head = lines[d0].encode("utf-8")[: doc.col_offset].decode("utf-8", errors="ignore")
    tail = lines[d1].encode("utf-8")[doc.end_col_offset :].decode("utf-8", errors="ignore")
    tail = tail.lstrip().removeprefix(";").strip()
    kept = lines[:d0]
    if head.strip():
        kept.append(head.rstrip())
    if tail and not tail.startswith("#"):
        kept.append(" " * doc.col_offset + tail)
    kept += lines[d1 + 1 :]
    body = [line for line in kept[1:] if line.strip() and not line.strip().startswith("#")]
    if len(node.body) == 1 and not body:  # the docstring was the whole body
        indent = " " * doc.col_offset if d0 > 0 else "    "
        if d0 == 0:  # "def f(): '''doc'''" on one line
            kept = [kept[0].rstrip() + " pass"] if kept else kept
        else:
            kept.append(indent + "pass")
    return kept


def extract_functions(text: str, module: str, min_words: int = 3) -> Iterator[FunctionExample]:
    """The functions with a usable docstring in one module's source ``text``."""
    tree = ast.parse(text)
    lines = text.splitlines()

    def visit(node: ast.AST, prefix: str) -> Iterator[FunctionExample]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    example = _example(child, qualname)
                    if example is not None:
                        yield example
                yield from visit(child, qualname + ".")
            else:
                yield from visit(child, prefix)

    def _example(fn: ast.AST, qualname: str) -> FunctionExample | None:
        docstring = ast.get_docstring(fn, clean=True)
        if not docstring:
            return None
        summary = first_sentence(docstring)
        if _SIGNATURE_LINE.match(summary) or len(summary.split()) < min_words:
            return None
        own = lines[fn.lineno - 1 : fn.end_lineno]
        code = textwrap.dedent("\n".join(_remove_docstring(own, fn, fn.body[0]))).strip("\n")
        return FunctionExample(module, qualname, code, summary)

    yield from visit(tree, "")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _walk(directory: Path) -> Iterator[Path]:
    """``.py`` files outside test folders, depth-first, each folder's entries in name order."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in _SKIP_DIRS and not entry.name.startswith("test_"):
                yield from _walk(Path(entry.path))
        elif entry.name.endswith(".py") and not entry.name.startswith("test_") and entry.is_file():
            yield Path(entry.path)


_EXTRACTOR_VERSION = 1  # bump when the extraction rules change: cached files are then unused


@functools.lru_cache(maxsize=2)
def stdlib_functions(root: str | None = None, min_words: int = 3) -> tuple[FunctionExample, ...]:
    """Every usable function of the standard library at ``root`` (default: this Python's),
    in file order.

    Parsing the whole library takes tens of seconds on a small machine, so the result is
    kept in ``MODELZOO_HOME/data/code_summaries/`` under a key made of the extraction
    rules' version, ``min_words``, the folder and every file's path, size and mtime: any
    change to the library gives a new key and a fresh parse.
    """
    base = Path(root or sysconfig.get_paths()["stdlib"])
    if not base.is_dir():
        raise ConfigError(f"the Python standard library directory {base} does not exist")
    paths = list(_walk(base))
    key = hashlib.sha256(f"{_EXTRACTOR_VERSION}:{min_words}:{base.resolve()}".encode())
    for path in paths:
        st = path.stat()
        key.update(f"{path.relative_to(base)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    cache = _cache_root() / f"functions-{key.hexdigest()[:24]}.json"
    if cache.is_file():
        try:
            rows = json.loads(cache.read_text(encoding="utf-8"))
            return tuple(FunctionExample(*row) for row in rows)
        except (ValueError, TypeError, OSError):
            _logger.warning("code_summaries: ignoring the unreadable cache file %s", cache)
    examples = _parse_all(base, paths, min_words)
    try:
        rows = [[e.module, e.qualname, e.source, e.summary] for e in examples]
        atomic_write_text(cache, json.dumps(rows, ensure_ascii=False))
    except OSError as err:  # a read-only cache only costs the next process the parse
        _logger.info("code_summaries: cannot write the cache %s: %s", cache, err)
    return examples


def _cache_root() -> Path:
    from modelzoo.weights.cache import cache_dir

    return cache_dir() / "data" / "code_summaries"


def _parse_all(base: Path, paths: list[Path], min_words: int) -> tuple[FunctionExample, ...]:
    examples: list[FunctionExample] = []
    skipped = 0
    for path in paths:
        try:
            with tokenize.open(path) as fh:  # honours the file's coding declaration
                text = fh.read()
            examples.extend(extract_functions(text, _module_name(path, base), min_words))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            skipped += 1  # e.g. lib2to3's Python 2 fixtures
    _logger.debug("code_summaries: %d functions, %d files skipped", len(examples), skipped)
    return tuple(examples)


def split_modules(
    examples: tuple[FunctionExample, ...] | list[FunctionExample],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    split_by: str = "package",
) -> dict[str, str]:
    """Group name -> split, every group whole; val and test get about their share of
    functions. Groups are dealt out in the order of ``sha256(f"{seed}:{name}")``."""
    sizes: dict[str, int] = {}
    for ex in examples:
        group = _group(ex.module, split_by)
        sizes[group] = sizes.get(group, 0) + 1
    order = sorted(sizes, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    total = sum(sizes.values())
    quota = {"test": test_fraction * total, "val": val_fraction * total}
    filled = {"test": 0, "val": 0}
    assignment = {}
    for group in order:
        for split in ("test", "val"):
            # A group goes where it fits, or where even it half-fits while the split is empty.
            if filled[split] + sizes[group] <= quota[split] or (
                filled[split] == 0 and sizes[group] <= 2 * quota[split] and quota[split] > 0
            ):
                assignment[group] = split
                filled[split] += sizes[group]
                break
        else:
            assignment[group] = "train"
    return assignment


def _group(module: str, split_by: str) -> str:
    return module.split(".")[0] if split_by == "package" else module


def _digest(examples: tuple[FunctionExample, ...]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        for part in (ex.module, ex.qualname, ex.source, ex.summary):
            h.update(part.encode("utf-8") + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def _tokenizer(texts: tuple[str, ...], vocab_size: int) -> SubwordTokenizer:
    return cached_tokenizer(texts, cache_dir=_cache_root(), vocab_size=vocab_size)


@register_dataset("code_summaries")
def code_summaries(
    *,
    vocab_size: int = 8000,
    max_src_len: int = 256,
    max_tgt_len: int = 48,
    min_words: int = 3,
    split_by: str = "package",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    stdlib: str | None = None,
) -> DataBundle:
    """Python standard-library functions (docstring removed) -> their docstring's first
    sentence, split by package.

    ``info`` holds ``tokenizer`` and ``decode`` (ids -> text), ``vocab_size``,
    ``pad_id``/``bos_id``/``eos_id``, ``python_version``, ``corpus_sha256`` and, per split,
    the number of functions and of packages (or modules) (``sizes``, ``groups``). Each
    split's ``texts`` holds its items' ``(source, summary)`` and ``examples`` the
    :class:`FunctionExample` of each item.

    Args:
        vocab_size: BPE vocabulary size (code and summaries share it).
        max_src_len: longest source in tokens, eos included; longer code is cut at the end
            (the signature and first lines are kept).
        max_tgt_len: longest summary in tokens, bos and eos included; functions with a
            longer one are left out of every split (``info["dropped_long"]``).
        min_words: fewest words in a summary.
        split_by: ``"package"`` (top-level module) or ``"module"`` (full dotted name).
        val_fraction: share of functions for validation (whole groups).
        test_fraction: share of functions for testing (whole groups).
        seed: the order groups are dealt out in, so another seed holds out other packages.
        stdlib: a standard-library folder to read instead of this interpreter's.
    """
    if split_by not in ("package", "module"):
        raise ConfigError(f"split_by must be 'package' or 'module'; got {split_by!r}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"need 0 <= val_fraction, test_fraction and a sum below 1; got {val_fraction}, "
            f"{test_fraction}"
        )
    if max_src_len < 8 or max_tgt_len < 4:
        raise ConfigError(
            f"need max_src_len >= 8 and max_tgt_len >= 4; got {max_src_len}, {max_tgt_len}"
        )
    if vocab_size < 300:
        raise ConfigError(f"vocab_size must be >= 300 (256 bytes + specials); got {vocab_size}")
    if min_words < 1:
        raise ConfigError(f"min_words must be >= 1; got {min_words}")
    examples = stdlib_functions(stdlib, min_words)
    if not examples:
        raise ConfigError(f"found no documented functions in the standard library at {stdlib}")
    assignment = split_modules(
        examples,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        split_by=split_by,
    )
    by_split: dict[str, list[FunctionExample]] = {s: [] for s in _SPLITS}
    for ex in examples:
        by_split[assignment[_group(ex.module, split_by)]].append(ex)
    train_texts = tuple(t for ex in by_split["train"] for t in (ex.source, ex.summary))
    tokenizer = _tokenizer(train_texts, vocab_size)

    datasets, dropped = {}, {}
    for split, chosen in by_split.items():
        sources = tokenizer.encode_batch([ex.source for ex in chosen])
        targets = tokenizer.encode_batch([ex.summary for ex in chosen], add_bos=True, add_eos=True)
        items, texts, kept = [], [], []
        for ex, s_ids, t_ids in zip(chosen, sources, targets, strict=True):
            if len(t_ids) > max_tgt_len:
                continue
            src = s_ids[: max_src_len - 1] + [EOS_ID]
            items.append((torch.tensor(src, dtype=torch.long), torch.tensor(t_ids)))
            texts.append((ex.source, ex.summary))
            kept.append(ex)
        dropped[split] = len(chosen) - len(items)
        datasets[split] = TranslationPairs(items, texts)
        datasets[split].examples = kept
    groups = {s: len({_group(ex.module, split_by) for ex in datasets[s].examples}) for s in _SPLITS}
    max_src = max((len(s) for d in datasets.values() for s, _ in d.items), default=0)
    max_tgt = max((len(t) for d in datasets.values() for _, t in d.items), default=0)
    info = {
        "task": "seq2seq",
        "vocab_size": tokenizer.vocab_size,
        "pad_id": PAD_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "max_len": max(max_src, max_tgt),
        "max_src_len": max_src,
        "max_tgt_len": max_tgt,
        "tokenizer": tokenizer,
        "decode": tokenizer.decode,
        "python_version": platform.python_version(),
        "stdlib": str(stdlib or sysconfig.get_paths()["stdlib"]),
        "corpus_sha256": _digest(examples),
        "split_by": split_by,
        "sizes": {s: len(d) for s, d in datasets.items()},
        "groups": groups,
        "dropped_long": dropped,
        "test_groups": sorted({_group(ex.module, split_by) for ex in datasets["test"].examples}),
    }
    return DataBundle(datasets["train"], datasets["val"], datasets["test"], info, collate_seq2seq)
