"""``modelzoo download``, ``modelzoo cache``: pretrained weights on this machine."""

from __future__ import annotations

import argparse
import json

from modelzoo.cli.common import format_params, table

__all__ = ["add_commands"]


def _cmd_download(args: argparse.Namespace) -> int:
    from modelzoo.weights import fetch_weight_set, get_weight_set

    results = {}
    # Resolve every name first, so a misspelt one fails (with "Did you mean") before
    # anything is downloaded.
    sets = []
    for name in args.names:
        arch, _, tag = name.partition(".")
        sets.append(get_weight_set(arch, tag or None))
    for ws in sets:
        results[ws.name] = [str(p) for p in fetch_weight_set(ws, progress=not args.json)]
        if not args.json:
            print(f"{ws.name}: {', '.join(results[ws.name])}")
    if args.json:
        print(json.dumps(results))
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from modelzoo.weights import cache_dir, cache_entries, clean_cache, verify_cache

    if args.action == "list":
        entries = cache_entries(include_shipped=True)
        if args.json:
            print(json.dumps({"cache": str(cache_dir()), "files": [e.to_dict() for e in entries]}))
            return 0
        rows = [
            [
                e.name,
                format_params(e.size) + "B",
                e.sha256[:16],
                "shipped" if e.shipped else "cache",
                e.source,
            ]
            for e in entries
        ]
        print(f"cache: {cache_dir()} (MODELZOO_HOME); shipped files come with modelzoo")
        print(table(rows, ["name", "size", "sha256", "where", "source"]) if rows else "(empty)")
        return 0
    if args.action == "verify":
        results = verify_cache(include_shipped=True)
        if args.json:
            print(json.dumps([{**e.to_dict(), "problem": p} for e, p in results]))
        else:
            for entry, problem in results:
                where = " (shipped)" if entry.shipped else ""
                status = f"BAD  {entry.path}{where}: {problem}" if problem else f"ok   {entry.path}"
                print(status + ("" if problem else where))
            print(f"{len(results)} files checked, {sum(bool(p) for _, p in results)} bad")
        return 1 if any(p for _, p in results) else 0
    removed = clean_cache(everything=args.all, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, _ in removed:
        print(f"{verb} {path}")
    total = format_params(sum(size for _, size in removed))
    print(f"{verb} {len(removed)} items, {total}B")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add this module's commands to the ``modelzoo`` parser."""
    p = commands.add_parser("download", help="fetch weight sets into the cache (verified)")
    p.add_argument("names", nargs="+", help="arch.tag, or arch for its default weight set")
    p.add_argument("--json", action="store_true", help="print {name: [paths]}")
    p.set_defaults(run=_cmd_download)

    p = commands.add_parser(
        "cache",
        help="list, verify or clean the weights cache",
        description="list: every weights file on this machine, downloads and the shipped ones "
        "(marked 'shipped'); verify: re-hash them all; clean: remove partial downloads and "
        "cached files that fail their check (shipped files are never removed)",
    )
    p.add_argument("action", choices=["list", "verify", "clean"])
    p.add_argument("--all", action="store_true", help="clean: empty the whole cache")
    p.add_argument("--dry-run", action="store_true", help="clean: only say what would go")
    p.add_argument("--json", action="store_true", help="list/verify: print JSON")
    p.set_defaults(run=_cmd_cache)
