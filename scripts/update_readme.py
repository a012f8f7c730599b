"""Regenerate the README's model table from the registry.

python scripts/update_readme.py          # rewrite README.md in place
python scripts/update_readme.py --check  # exit 1 if the table is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- models:start -->", "<!-- models:end -->"


def model_table() -> str:
    import modelzoo as mz
    from modelzoo.cli.models import model_table_markdown

    cards = [mz.model_card(name) for name in mz.list_models()]
    return f"{len(cards)} native models.\n\n" + model_table_markdown(cards)


def render(text: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return pattern.sub(lambda _: f"{START}\n{model_table()}\n{END}", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args()
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md's model table is stale: run python scripts/update_readme.py")
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
