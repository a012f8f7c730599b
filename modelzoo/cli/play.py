"""``modelzoo play``: watch a saved policy play, and see its returns."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_commands"]


def _cmd_play(args: argparse.Namespace) -> int:
    from modelzoo.train.rl.play import load_policy, play

    policy = load_policy(args.target, args.checkpoint)
    result = play(
        policy,
        args.episodes,
        args.seed,
        video=args.video,
        fps=args.fps,
        max_frames=args.max_frames,
    )
    if args.json:
        print(json.dumps({"policy": policy.source, "env_id": policy.env_id, **result.to_dict()}))
        return 0
    count = len(result.returns)
    print(f"{policy.source} on {policy.env_id}: {count} episodes from seed {result.seed}")
    for i, (ret, length) in enumerate(zip(result.returns, result.lengths)):
        print(f"  episode {i + 1:>3}: return {ret:10.2f}  ({length} steps)")
    print(f"mean_return={result.mean_return:.4g}  std_return={result.std_return:.4g}")
    if result.video is not None:
        print(f"video: {result.video}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``play`` to the ``modelzoo`` parser."""
    p = commands.add_parser(
        "play",
        help="play episodes of a saved policy (run directory or shipped weights); video optional",
    )
    p.add_argument(
        "target",
        help="a run directory of an RL recipe, or a shipped policy (arch.tag, e.g. "
        "actor_critic.cartpole)",
    )
    p.add_argument(
        "--episodes", type=int, help="episodes to play (default: the run's or card's own)"
    )
    p.add_argument("--seed", type=int, help="seed of the first copy (default: the run's or card's)")
    p.add_argument("--checkpoint", help="a run's checkpoint (default: best.ckpt, else last.ckpt)")
    p.add_argument("--video", help="write the first copy's episodes to a .gif or .mp4 file")
    p.add_argument("--fps", type=int, default=30, help="frames per second of the video")
    p.add_argument("--max-frames", type=int, help="record at most this many frames")
    p.add_argument("--json", action="store_true", help="print one JSON object (has mean_return)")
    p.set_defaults(run=_cmd_play)
