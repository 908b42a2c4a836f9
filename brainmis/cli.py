"""The ``brainmis`` command.

``brainmis fit|validate|test ...`` is a LightningCLI (``brainmis.commands.fit``); every other
subcommand is a tool with its own ``main(argv) -> int`` in the module named below, imported
only when used. A ``BrainmisInputError`` anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

from brainmis.errors import BrainmisInputError

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test")

TOOLS: dict[str, tuple[str, str]] = {
    "synth": ("brainmis.commands.synth", "write a synthetic dataset with known ground truth"),
    "prepare": ("brainmis.commands.prepare", "turn a source dataset into a canonical bundle"),
    "make-tiny-model": (
        "brainmis.commands.make_tiny_model",
        "build a tiny model + tokenizer from a text",
    ),
    "export": ("brainmis.commands.export", "merge LoRA from a checkpoint into a HF model folder"),
    "evaluate-brain": ("brainmis.commands.evaluate_brain", "cross-validated ridge brain alignment"),
    "probe": ("brainmis.commands.probe", "Holmes-style probing of a model"),
    "compare": ("brainmis.commands.compare", "statistics, tables, figures across runs"),
    "sweep": ("brainmis.commands.sweep", "expand an experiment matrix, run it locally or on SLURM"),
    "demo": ("brainmis.commands.demo", "the main job: every condition on the synthetic default"),
    "validate-world": (
        "brainmis.commands.validate_world",
        "ground-truth check: the planted effect found, and no other",
    ),
}


def usage() -> str:
    lines = ["usage: brainmis <command> [options]", "", "training (LightningCLI):"]
    lines += [f"  {name:<16} see `brainmis {name} --help`" for name in LIGHTNING_SUBCOMMANDS]
    lines += ["", "tools:"]
    lines += [f"  {name:<16} {help_}" for name, (_, help_) in TOOLS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command in LIGHTNING_SUBCOMMANDS:
            from brainmis.commands.fit import run_lightning_cli

            run_lightning_cli([command, *rest])
            return 0
        if command not in TOOLS:
            known = ", ".join([*LIGHTNING_SUBCOMMANDS, *TOOLS])
            print(
                f"brainmis: error: unknown command {command!r}; commands: {known} "
                "(see brainmis --help)",
                file=sys.stderr,
            )
            return 2
        module = importlib.import_module(TOOLS[command][0])
        return int(module.main(rest) or 0)
    except BrainmisInputError as error:
        print(f"brainmis {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
