"""``modelzoo push``: upload a run directory or a model folder to the Hugging Face Hub."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_commands"]


def _cmd_push(args: argparse.Namespace) -> int:
    from modelzoo.weights.hub import push_to_hub

    result = push_to_hub(
        args.target,
        args.repo_id,
        revision=args.revision,
        private=True if args.private else None,
        commit_message=args.commit_message,
        license=args.license,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"pushed {', '.join(result.files)} to {result.repo_id} ({result.revision})")
    print(f"  commit: {result.url or result.commit}")
    print(f'  load it: modelzoo.create("hf-hub:{result.repo_id}")')
    print(f'  exactly this commit: modelzoo.create("{result.hub_id}")')
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``push`` to the ``modelzoo`` parser."""
    p = commands.add_parser(
        "push",
        help="upload a run directory or model folder to the Hugging Face Hub, with a model card",
        description="Write the run's (or folder's) model in the Hub layout (config.json, "
        "model.safetensors, README.md: the same files save_pretrained writes) and commit them "
        "to REPO_ID, creating the repository when needed. Log in first with "
        "`huggingface-cli login` or set HF_TOKEN; HF_ENDPOINT chooses the Hub.",
    )
    p.add_argument(
        "target",
        metavar="RUN_DIR_OR_FOLDER",
        help="a run directory (its evaluated weights, recipe and test metrics; an RL run's "
        "policy with its environment and statistics) or a save_pretrained / finetune folder",
    )
    p.add_argument("repo_id", metavar="REPO_ID", help="the repository, <org>/<repo>")
    p.add_argument("--revision", help="the branch to commit to (created from main; default main)")
    p.add_argument(
        "--private", action="store_true", help="create the repository as private (when new)"
    )
    p.add_argument("--commit-message", help="default: 'Upload <model> with modelzoo'")
    p.add_argument(
        "--license", help="the weights' licence for the card, e.g. bsd-3-clause, apache-2.0, mit"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (commit, url)")
    p.set_defaults(run=_cmd_push)
