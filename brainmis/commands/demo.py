"""``brainmis demo``: the main job on the embedded synthetic default.

Builds a tiny GPT-2 (or ``--model-family F``: any of ``brainmis.models.tiny.TINY_FAMILIES``;
tokenizer trained on the project's narrative, briefly LM-pretrained),
then fits every condition for every synthetic subject with the demo configs
(``configs/demo/<condition>.yaml``: brain-alignment and probing callbacks included), and ends
with ``brainmis compare`` over the runs, which prints the comparison table. Nothing existing
is overwritten: without ``--out`` the first free folder ``runs/demo``, ``runs/demo-2``, ...
is used.
"""

from __future__ import annotations

import time
from pathlib import Path

from brainmis.cli_parser import ToolArgumentParser
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir
from brainmis.models.tiny import TINY_FAMILIES
from brainmis.run_folder.layout import BRAIN_FILE, LM_FILE, evaluation_dir
from brainmis.structured_files import read_mapping

CONDITIONS = ("misaligned", "preserving", "tuned", "lm_only")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "demo"


def quiet_libraries() -> None:
    """Keep the demo's output to its own lines: no library warnings, banners or progress bars
    (``--verbose`` keeps them). The logs and TensorBoard files are unaffected."""
    import logging
    import warnings

    import transformers

    warnings.simplefilter("ignore")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def first_free_folder(base: Path) -> Path:
    """``base`` if it is free (absent or empty), else ``base-2``, ``base-3``, ..."""
    candidate, number = base, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def demo_config(condition: str) -> Path:
    path = CONFIG_DIR / f"{condition}.yaml"
    if not path.is_file():
        raise BrainmisInputError(
            path, "demo config not found: run `brainmis demo` from a clone of the repository"
        )
    return path


def synthetic_default_subjects() -> list[str]:
    """Names of the subjects of the synthetic default (generated into the cache if needed)."""
    from brainmis.data.bundle import load_bundle
    from brainmis.data.datamodule import BrainDataModule

    return list(load_bundle(BrainDataModule().bundle_path, verify=False).subjects)


def demo_subjects(requested: list[str] | None) -> list[str]:
    """The subjects to fit: ``requested`` (each must be one of the synthetic default's), or
    all of them. Checked before the demo writes anything."""
    available = synthetic_default_subjects()
    unknown = [name for name in requested or [] if name not in available]
    if unknown:
        raise BrainmisInputError(
            None,
            f"--subjects: unknown subject(s) {', '.join(unknown)}; the synthetic default has "
            f"{', '.join(available)}",
        )
    if requested and len(set(requested)) != len(requested):
        raise BrainmisInputError(None, f"--subjects repeat: {' '.join(requested)}")
    return list(requested or available)


def fit_args(condition: str, subject: str, model: Path, out: Path, extra: list[str]) -> list[str]:
    """Arguments of ``brainmis fit`` for one demo run, logged under
    ``<out>/lightning_logs/<condition>_sub-<subject>/version_0``."""
    return [
        "fit",
        "--config",
        str(demo_config(condition)),
        "--model.pretrained_path",
        str(model),
        "--data.subject",
        subject,
        "--trainer.default_root_dir",
        str(out),
        "--trainer.logger",
        "lightning.pytorch.loggers.TensorBoardLogger",
        "--trainer.logger.save_dir",
        str(out / "lightning_logs"),
        "--trainer.logger.name",
        f"{condition}_sub-{subject}",
        "--trainer.enable_model_summary=false",
        *extra,
    ]


def run_summary(run_dir: Path) -> str:
    """One line from a finished run's evaluation files: fresh-ridge brain r before -> after
    training, and the held-out LM loss."""
    folder = evaluation_dir(run_dir)
    parts = []
    alignment_file, lm_file = folder / BRAIN_FILE, folder / LM_FILE
    if alignment_file.is_file():
        alignment = read_mapping(alignment_file, "brain-alignment record")
        first = alignment.get("history", [alignment])[0]
        parts.append(f"brain r {first['mean']:.3f} -> {alignment['mean']:.3f}")
    if lm_file.is_file():
        parts.append(f"LM loss {read_mapping(lm_file, 'held-out LM loss record')['lm_loss']:.3f}")
    return ", ".join(parts) or "done"


def main(argv: list[str]) -> int:
    parser = ToolArgumentParser(prog="brainmis demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="new or empty folder")
    parser.add_argument(
        "--conditions",
        nargs="+",
        default=list(CONDITIONS),
        choices=(*CONDITIONS, "noise_adversary", "erased", "inlp"),  # optional: not in the default demo
    )
    parser.add_argument("--subjects", nargs="+", default=None, help="default: every subject")
    parser.add_argument("--pretrain-steps", type=int, default=300, help="LM steps of the model")
    parser.add_argument(
        "--model-family", default="gpt2", choices=TINY_FAMILIES, help="the tiny model's family"
    )
    parser.add_argument("--verbose", action="store_true", help="keep library warnings and banners")
    parser.add_argument(
        "fit_overrides",
        nargs="*",
        help="extra `brainmis fit` options after `--`, e.g. -- --trainer.max_epochs=2",
    )
    args = parser.parse_args(argv)
    out = refuse_non_empty_dir(args.out) if args.out else first_free_folder(Path("runs/demo"))
    for condition in args.conditions:
        demo_config(condition)
    subjects = demo_subjects(args.subjects)

    from brainmis.commands.compare import main as compare_main
    from brainmis.commands.fit import run_lightning_cli
    from brainmis.models.tiny import make_tiny_model

    if not args.verbose:
        quiet_libraries()
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    print(f"brainmis demo: writing into {out}")
    family = args.model_family
    model = make_tiny_model(family, out=out / f"tiny-{family}", pretrain_steps=args.pretrain_steps)
    print(f"  tiny {family} with a tokenizer trained on the narrative: {model}")
    for subject in subjects:
        for condition in args.conditions:
            print(f"  fit {condition:<11} subject {subject} ...", end=" ", flush=True)
            fit_started = time.perf_counter()
            cli = run_lightning_cli(fit_args(condition, subject, model, out, args.fit_overrides))
            seconds = time.perf_counter() - fit_started
            print(f"{run_summary(Path(cli.trainer.log_dir))} ({seconds:.0f} s)", flush=True)
    print(f"  {len(subjects) * len(args.conditions)} fits in {time.perf_counter() - started:.0f} s")
    return compare_main([str(out / "lightning_logs"), "--out", str(out / "comparison")])
