"""``brainmis export CKPT --out DIR``: a checkpoint as a plain Hugging Face model folder plus the
brain head (see ``brainmis.models.export``)."""

from __future__ import annotations

from pathlib import Path

from brainmis.cli_parser import ToolArgumentParser
from brainmis.models.export import export_checkpoint


def main(argv: list[str]) -> int:
    parser = ToolArgumentParser(
        prog="brainmis export",
        description="Merge LoRA from a checkpoint into a Hugging Face model folder (+ head).",
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by `brainmis fit`")
    parser.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    parser.add_argument(
        "--pretrained-path", default=None, help="base model folder, if it moved since training"
    )
    args = parser.parse_args(argv)
    out = export_checkpoint(args.checkpoint, args.out, args.pretrained_path)
    print(f"wrote merged model, tokenizer and brain head to {out}")
    return 0
