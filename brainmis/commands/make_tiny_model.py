"""``brainmis make-tiny-model``: a tiny model + tokenizer trained on a text, saved like a real
checkpoint (see ``brainmis.models.tiny``)."""

from __future__ import annotations

from pathlib import Path

from brainmis.cli_parser import ToolArgumentParser
from brainmis.models.tiny import DEFAULT_TEXT, TINY_FAMILIES, make_tiny_model


def main(argv: list[str]) -> int:
    parser = ToolArgumentParser(
        prog="brainmis make-tiny-model",
        description="Build a tiny model + tokenizer trained on a text, saved with save_pretrained.",
    )
    parser.add_argument("--family", required=True, choices=TINY_FAMILIES)
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="UTF-8 training text")
    parser.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=1000, help="tokenizer vocabulary size")
    parser.add_argument("--pretrain-steps", type=int, default=0, help="LM steps on the text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = make_tiny_model(
        args.family,
        args.text,
        args.out,
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        vocab=args.vocab,
        pretrain_steps=args.pretrain_steps,
        seed=args.seed,
    )
    print(f"wrote {args.family} model ({args.hidden} hidden, {args.layers} layers) to {out}")
    return 0
