"""``modelzoo translate``: translate text with a weight set, a weights file or a run directory.

    modelzoo translate transformer_seq2seq.po_en_de "Save and continue editing"
    modelzoo translate transformer_seq2seq.po_multi "Delete %(count)d items?" --to fr --json
    modelzoo translate runs/my-run "Add another" "Change password" --to de --beam 1

Texts come from the arguments, or one per line from ``--file`` (``-`` reads stdin).
Without ``--json`` each translation is printed on its own line, in order; with it, one
JSON list of ``{"source", "translation", "target"}`` objects is the only thing on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

from modelzoo.errors import ConfigError

__all__ = ["add_commands"]


def _texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.texts)
    if args.file is not None:
        if args.file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            try:
                with open(args.file, encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
            except OSError as err:
                raise ConfigError(f"cannot read --file {args.file}: {err.strerror}") from err
            except UnicodeDecodeError as err:
                raise ConfigError(f"--file {args.file} is not UTF-8 text: {err}") from err
        texts += [line for line in lines if line.strip()]
    if not texts:
        raise ConfigError('nothing to translate: give texts ("Save") or --file FILE')
    return texts


def _cmd_translate(args: argparse.Namespace) -> int:
    from modelzoo.translate import load_text_model, translate

    texts = _texts(args)
    if args.beam < 1:
        raise ConfigError(f"--beam must be >= 1; got {args.beam}")
    model = load_text_model(args.model, checkpoint=args.checkpoint)
    outputs = translate(
        model,
        texts,
        target=args.to,
        beam_size=args.beam,
        length_penalty=args.length_penalty,
        max_len=args.max_len,
    )
    spec = model.text_spec
    target = args.to or (spec.target_languages[0] if len(spec.target_languages) == 1 else None)
    if args.json:
        rows = [
            {"source": s, "translation": t, "target": target}
            for s, t in zip(texts, outputs, strict=True)
        ]
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for line in outputs:
            print(line)
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``translate`` to the ``modelzoo`` parser."""
    p = commands.add_parser(
        "translate",
        help="translate English text (a weight set such as transformer_seq2seq.po_en_de, a "
        "weights file or a run directory)",
    )
    p.add_argument(
        "model", help="weight set (arch.tag), .safetensors file with its tokenizer, or run dir"
    )
    p.add_argument("texts", nargs="*", help="the English texts (quote each one)")
    p.add_argument("--to", default=None, help="target language, e.g. de, fr, pt_BR")
    p.add_argument("--file", default=None, help="also translate each line of FILE (- = stdin)")
    p.add_argument("--beam", type=int, default=4, help="beam size (1: greedy; default 4)")
    p.add_argument(
        "--length-penalty", type=float, default=1.0, help="beam length exponent (default 1.0)"
    )
    p.add_argument("--max-len", type=int, default=None, help="most tokens per translation")
    p.add_argument(
        "--checkpoint", default=None, help="with a run directory: the checkpoint to read"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(run=_cmd_translate)
