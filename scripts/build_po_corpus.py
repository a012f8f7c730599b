"""Build the po_translations corpus from the .po catalogs inside four projects' wheels.

    pip download --no-deps -d /tmp/po-wheels django sphinx wagtail django-allauth
    python scripts/build_po_corpus.py --wheels /tmp/po-wheels
    python scripts/build_po_corpus.py --wheels /tmp/po-wheels --check   # rebuild, compare

The wheels are read as zip archives: nothing is installed, so the projects' own
dependencies never enter the environment. The catalogs are parsed with babel and turned
into pairs by ``modelzoo.data.po_translations.catalog_pairs`` (the rules are in that
module's docstring). The script writes, under ``modelzoo/data/corpora/po/``:

- ``po_translations.json.xz``: ``sources`` (every English source, sorted), ``splits``
  (0 train, 1 val, 2 test per source) and ``languages`` (code -> ``[[source_index,
  target], ...]``), for every language with at least ``--min-pairs`` pairs;
- ``corpus.json``: the projects and versions read, the license of each, the rules'
  statistics, pairs per language per split, and the sha256 of the .xz file;
- ``LICENSE.<project>``: each project's license text, from its wheel;
- ``NOTICE``: what the corpus is, where it comes from, under which terms.

Every file is written atomically; ``--check`` writes nothing and exits 1 when a rebuild
differs from the committed corpus.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import re
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

from modelzoo.data.po_translations import (
    CORPUS_DIR,
    CORPUS_FILE,
    META_FILE,
    PROJECTS,
    SPLIT_FRACTIONS,
    SPLITS,
    catalog_pairs,
    normalize_language,
    read_catalog,
    split_key,
    split_of_key,
)
from modelzoo.utils.io import atomic_write

FORMAT = 1
_WHEEL = re.compile(r"^(?P<name>[A-Za-z0-9_.]+?)-(?P<version>[^-]+)-.*\.whl$")
_LICENSE_NAMES = ("LICENSE", "LICENSE.rst", "LICENSE.txt", "LICENSE.md")


def find_wheels(folder: Path) -> dict[str, Path]:
    """The newest wheel of each project in ``folder``, by project name."""
    found: dict[str, tuple[tuple[int, ...], Path]] = {}
    for path in sorted(folder.glob("*.whl")):
        m = _WHEEL.match(path.name)
        if not m:
            continue
        name = m["name"].lower().replace("_", "-")
        if name not in PROJECTS:
            continue
        key = tuple(int(x) for x in re.findall(r"\d+", m["version"]))
        if name not in found or key > found[name][0]:
            found[name] = (key, path)
    missing = sorted(set(PROJECTS) - set(found))
    if missing:
        sys.exit(
            f"no wheel of {', '.join(missing)} in {folder}. Get them with:\n"
            f"  pip download --no-deps -d {folder} {' '.join(sorted(PROJECTS))}"
        )
    return {name: path for name, (_, path) in found.items()}


def wheel_version(path: Path) -> str:
    return _WHEEL.match(path.name)["version"]


def license_text(wheel: zipfile.ZipFile) -> str:
    """The project's own license: the LICENSE file of its .dist-info."""
    for name in wheel.namelist():
        parts = name.split("/")
        if parts[0].endswith(".dist-info") and parts[-1] in _LICENSE_NAMES:
            return wheel.read(name).decode("utf-8")
    raise SystemExit(f"{wheel.filename} has no LICENSE file in its .dist-info folder")


def catalog_language(member: str) -> str | None:
    """The language of ``.../locale/<lang>/LC_MESSAGES/<domain>.po``, or None."""
    parts = member.split("/")
    if not member.endswith(".po") or "LC_MESSAGES" not in parts:
        return None
    index = parts.index("LC_MESSAGES")
    return parts[index - 1] if index > 0 else None


def extract(wheels: dict[str, Path]) -> tuple[dict, dict]:
    """Pairs per language from every catalog, de-duplicated, and the statistics."""
    pairs: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)  # lang -> pair -> project
    anchors: dict[str, set[str]] = defaultdict(set)  # source -> singular msgids it came with
    stats: dict[str, Counter] = {}
    catalogs = Counter()
    for project in PROJECTS:  # this order decides which project keeps a shared pair
        counter = Counter()
        with zipfile.ZipFile(wheels[project]) as wheel:
            for member in sorted(wheel.namelist()):
                lang = catalog_language(member)
                if lang is None:
                    continue
                lang = normalize_language(lang)
                if lang == "en" or lang.startswith("en_"):  # English variants are no translation
                    counter["english_variant_catalogs"] += 1
                    continue
                catalogs[project] += 1
                catalog = read_catalog(wheel.read(member))
                for source, target, anchor in catalog_pairs(catalog, counter):
                    pair = (source, target)
                    anchors[source].add(anchor)
                    if pair in pairs[lang]:
                        counter["duplicate"] += 1
                    else:
                        pairs[lang][pair] = project
        stats[project] = counter
    rules = {p: dict(c) for p, c in stats.items()}
    return pairs, anchors, {"catalogs": dict(catalogs), "rules": rules}


def source_splits(sources: list[str], anchors: dict[str, set[str]]) -> list[int]:
    """The split of each source: sources whose keys are linked by a plural entry form one
    group, and a group takes the split of its smallest key (union-find over keys)."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for source in sources:
        for anchor in anchors.get(source, ()):
            a, b = root(split_key(source)), root(split_key(anchor))
            if a != b:
                parent[max(a, b)] = min(a, b)  # the smaller key is the root
    return [SPLITS.index(split_of_key(root(split_key(s)))) for s in sources]


def build(wheels: dict[str, Path], min_pairs: int) -> tuple[bytes, dict, dict[str, str]]:
    """The compressed corpus, its metadata and the license texts."""
    pairs, anchors, stats = extract(wheels)
    kept = sorted(lang for lang, p in pairs.items() if len(p) >= min_pairs)
    left_out = {lang: len(p) for lang, p in sorted(pairs.items()) if len(p) < min_pairs}
    sources = sorted({s for lang in kept for s, _ in pairs[lang]})
    index = {s: i for i, s in enumerate(sources)}
    splits = source_splits(sources, anchors)
    languages = {
        lang: sorted([index[s], t] for s, t in pairs[lang]) for lang in kept
    }  # sorted: the file does not depend on the order catalogs were read in
    document = {"format": FORMAT, "sources": sources, "splits": splits, "languages": languages}
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    # xz at a fixed preset and check type gives the same bytes on every machine.
    data = lzma.compress(text.encode("utf-8"), preset=9 | lzma.PRESET_EXTREME)
    per_split = {
        lang: {
            split: sum(1 for i, _ in languages[lang] if splits[i] == k)
            for k, split in enumerate(SPLITS)
        }
        for lang in kept
    }
    licenses = {}
    projects = []
    for project, (title, spdx, license_file) in PROJECTS.items():
        with zipfile.ZipFile(wheels[project]) as wheel:
            licenses[license_file] = license_text(wheel)
        projects.append(
            {
                "name": project,
                "title": title,
                "version": wheel_version(wheels[project]),
                "wheel": wheels[project].name,
                "wheel_sha256": hashlib.sha256(wheels[project].read_bytes()).hexdigest(),
                "license": spdx,
                "license_file": license_file,
            }
        )
    meta = {
        "format": FORMAT,
        "file": CORPUS_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "projects": projects,
        "babel": _babel_version(),
        "min_pairs": min_pairs,
        "split_fractions": dict(zip(SPLITS, SPLIT_FRACTIONS, strict=True)),
        "sources": {split: splits.count(k) for k, split in enumerate(SPLITS)},
        "pairs": per_split,
        "total_pairs": sum(len(v) for v in languages.values()),
        "left_out_languages": left_out,
        **stats,
    }
    return data, meta, licenses


def _babel_version() -> str:
    import babel

    return babel.__version__


def notice(meta: dict) -> str:
    lines = [
        "po_translations corpus",
        "======================",
        "",
        "English -> X sentence pairs extracted from the gettext translation catalogs (.po",
        "files) that ship inside the wheels of the projects below. The translations were",
        "written by each project's volunteer translators and are distributed by the projects",
        "under the project's license; this corpus redistributes them under the same terms.",
        "Each project's license text is in the file named beside it. The extraction rules",
        "(fuzzy, obsolete and empty entries skipped, whitespace collapsed, pairs with",
        "mismatching placeholders dropped, de-duplicated) are described in",
        "modelzoo/data/po_translations.py; scripts/build_po_corpus.py rebuilds the corpus.",
        "",
    ]
    for p in meta["projects"]:
        lines.append(
            f"- {p['title']} {p['version']} ({p['wheel']}): {p['license']}, see {p['license_file']}"
        )
    lines += [
        "",
        "Copyright notices are those of the license files: Django Software Foundation and",
        "individual contributors (Django); the Sphinx team (Sphinx); Torchbox Ltd and",
        "individual contributors (Wagtail); Raymond Penners and contributors (django-allauth).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True, help="folder with the four wheels")
    parser.add_argument("--out", type=Path, default=CORPUS_DIR, help="output folder")
    parser.add_argument(
        "--min-pairs", type=int, default=1500, help="fewest pairs a language needs to be kept"
    )
    parser.add_argument("--check", action="store_true", help="compare with --out, write nothing")
    args = parser.parse_args(argv)

    wheels = find_wheels(args.wheels)
    for project, path in wheels.items():
        print(f"reading {project} {wheel_version(path)} from {path.name}", file=sys.stderr)
    data, meta, licenses = build(wheels, args.min_pairs)
    files = {
        CORPUS_FILE: data,
        META_FILE: (json.dumps(meta, indent=1, ensure_ascii=False) + "\n").encode("utf-8"),
        "NOTICE": notice(meta).encode(),
    }
    files.update({name: text.encode("utf-8") for name, text in licenses.items()})

    if args.check:
        differ = [
            n
            for n, b in files.items()
            if not (args.out / n).is_file() or (args.out / n).read_bytes() != b
        ]
        for name in differ:
            print(f"differs from the rebuild: {args.out / name}", file=sys.stderr)
        print("corpus matches the rebuild" if not differ else "corpus is out of date")
        return 1 if differ else 0

    for name, payload in files.items():
        atomic_write(args.out / name, payload)
    kb = len(data) / 1024
    print(
        f"wrote {args.out / CORPUS_FILE} ({kb:.0f} KiB, {meta['total_pairs']} pairs, "
        f"{len(meta['pairs'])} languages)"
    )
    print(f"sources per split: {meta['sources']}")
    print("language  train   val  test")
    for lang, counts in sorted(meta["pairs"].items(), key=lambda kv: -sum(kv[1].values())):
        print(f"{lang:9s} {counts['train']:5d} {counts['val']:5d} {counts['test']:5d}")
    print(f"left out (< {args.min_pairs} pairs): {meta['left_out_languages']}")
    print(f"rules: {json.dumps(meta['rules'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
