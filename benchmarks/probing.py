"""Batched probes vs a per-task, per-seed loop vs sklearn, on cached features of the built-in suite.

    python benchmarks/probing.py [--work-dir DIR] [--loop-tasks N] [--threads T] [--device D]

1. Builds (once, into ``--work-dir``) a tiny GPT-2 (64 wide, 2 layers) with a tokenizer
   trained on the suite's text, and caches its last-layer features of every built-in task
   (1000 train / 200 dev / 200 test items each) as ``features.npz``.
2. Trains every task x seed (0-4) probe with the Holmes protocol as ONE batched computation
   (``train_probes``).
3. Trains the same probes one at a time with an ordinary PyTorch loop (``train_single_probe``,
   same protocol). ``--loop-tasks N`` times the loop on the first N tasks only and scales its
   time to all tasks (printed as "extrapolated"); 0 = all tasks.
4. Fits sklearn ``LogisticRegression`` (lbfgs, C=1) per task.

Prints time ratios and accuracy differences (in points) beside the goal: >= 10x faster than
the loop, accuracy within 1 point.
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import numpy as np
import torch

from brainmis.evaluation.probing.builtin.suite import (
    BUILTIN_TASKS,
    generate_rows,
    load_builtin_suite,
)
from brainmis.evaluation.probing.probe import (
    ProbeProblem,
    ProbeProtocol,
    train_probes,
    train_single_probe,
)
from brainmis.evaluation.probing.representations import encode_tasks

GOAL_SPEEDUP = 10.0
GOAL_POINTS = 1.0


def suite_text(path: Path) -> Path:
    lines = []
    for spec in BUILTIN_TASKS:
        for row in generate_rows(spec, seed=123, sizes=(60, 0, 0)):
            lines += ast.literal_eval(row["context"]) if row["context"] else []
            lines += [x for x in ast.literal_eval(row["inputs"]) if isinstance(x, str)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cached_problems(work_dir: Path) -> list[ProbeProblem]:
    """Probe problems of every built-in task from cached tiny-GPT-2 features."""
    cache = work_dir / "features.npz"
    if not cache.exists():
        from brainmis.models.backbone import load_backbone
        from brainmis.models.tiny import make_tiny_model

        work_dir.mkdir(parents=True, exist_ok=True)
        model_dir = work_dir / "tiny-gpt2"
        if not (model_dir / "config.json").exists():
            make_tiny_model(
                "gpt2",
                suite_text(work_dir / "suite.txt"),
                model_dir,
                hidden=64,
                layers=2,
                heads=2,
                vocab=500,
            )
        loaded = load_backbone(model_dir)
        tasks = load_builtin_suite(work_dir / "suite")
        start = time.perf_counter()
        features = encode_tasks(loaded.model, loaded.tokenizer, tasks)
        print(
            f"encoded {len(tasks)} tasks ({sum(len(t.items) for t in tasks)} items) in {time.perf_counter() - start:.1f} s"
        )
        arrays = {}
        for task_features in features:
            task = task_features.task
            for split in ("train", "dev", "test"):
                arrays[f"{task.name}|x_{split}"] = task_features.splits[split]
                arrays[f"{task.name}|y_{split}"] = task.labels(split)
            arrays[f"{task.name}|num_labels"] = np.array(task.num_labels)
        np.savez(cache, **arrays)
    data = np.load(cache, allow_pickle=False)
    names = sorted(
        {key.split("|")[0] for key in data.files}, key=[s.name for s in BUILTIN_TASKS].index
    )
    return [
        ProbeProblem(
            name,
            data[f"{name}|x_train"],
            data[f"{name}|y_train"],
            data[f"{name}|x_dev"],
            data[f"{name}|y_dev"],
            data[f"{name}|x_test"],
            int(data[f"{name}|num_labels"]),
        )  # fmt: skip
        for name in names
    ]


def score(problem: ProbeProblem, y_test: np.ndarray, predictions: np.ndarray) -> float:
    """Accuracy (classification) or Pearson r (regression), in points (x100)."""
    if problem.is_regression:
        return 100 * float(np.corrcoef(y_test, predictions)[0, 1])
    return 100 * float(np.mean(y_test == predictions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/brainmis-bench-probing"))
    parser.add_argument(
        "--loop-tasks", type=int, default=6, help="tasks timed in the loop (0 = all)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    problems = cached_problems(args.work_dir)
    data = np.load(args.work_dir / "features.npz", allow_pickle=False)
    y_test = {p.name: data[f"{p.name}|y_test"] for p in problems}
    protocol = ProbeProtocol()
    n_probes = len(problems) * len(protocol.seeds)
    print(f"{len(problems)} tasks x {len(protocol.seeds)} seeds = {n_probes} probes; "
          f"features {problems[0].x_train.shape[1]}-{max(p.x_train.shape[1] for p in problems)} wide; "
          f"torch threads {torch.get_num_threads()}; device {args.device}")  # fmt: skip

    start = time.perf_counter()
    batched = train_probes(problems, protocol, device=args.device)
    batched_s = time.perf_counter() - start
    batched_scores = {
        (p.name, r.seed): score(p, y_test[p.name], r.test_predictions)
        for p, results in zip(problems, batched, strict=True)
        for r in results
    }

    loop_problems = problems if args.loop_tasks <= 0 else problems[: args.loop_tasks]
    start = time.perf_counter()
    loop_scores = {
        (p.name, seed): score(
            p, y_test[p.name], train_single_probe(p, seed, protocol).test_predictions
        )
        for p in loop_problems
        for seed in protocol.seeds
    }
    loop_measured_s = time.perf_counter() - start
    loop_s = loop_measured_s * len(problems) / len(loop_problems)
    extrapolated = len(loop_problems) < len(problems)

    from sklearn.linear_model import LogisticRegression, Ridge

    start = time.perf_counter()
    sklearn_scores = {}
    for p in problems:
        model = Ridge(alpha=1.0) if p.is_regression else LogisticRegression(max_iter=1000)
        model.fit(p.x_train, p.y_train)
        sklearn_scores[p.name] = score(p, y_test[p.name], model.predict(p.x_test))
    sklearn_s = time.perf_counter() - start

    keys = list(loop_scores)
    batched_on_loop = np.mean([batched_scores[k] for k in keys])
    loop_mean = np.mean([loop_scores[k] for k in keys])
    per_task_batched = {
        p.name: np.mean([batched_scores[(p.name, s)] for s in protocol.seeds]) for p in problems
    }
    batched_all = np.mean(list(per_task_batched.values()))
    sklearn_all = np.mean(list(sklearn_scores.values()))
    speedup = loop_s / batched_s
    print()
    print(f"{'':34}{'time (s)':>10}{'score':>9}")
    print(f"{'batched (all tasks, 5 seeds)':34}{batched_s:10.1f}{batched_all:9.2f}")
    label = f"loop ({len(loop_problems)} tasks{', extrapolated' if extrapolated else ''})"
    print(f"{label:34}{loop_s:10.1f}{loop_mean:9.2f}   (measured {loop_measured_s:.1f} s)")
    print(f"{'sklearn LogisticRegression/Ridge':34}{sklearn_s:10.1f}{sklearn_all:9.2f}")
    print()
    print(
        f"speed-up batched vs loop:        {speedup:7.1f}x   goal >= {GOAL_SPEEDUP:.0f}x   ratio to goal {speedup / GOAL_SPEEDUP:.2f}"
    )
    diff = batched_on_loop - loop_mean
    print(
        f"score batched - loop (same probes): {diff:+.2f} points   goal |diff| <= {GOAL_POINTS:.0f}"
    )
    print(f"score batched - sklearn (all tasks): {batched_all - sklearn_all:+.2f} points")
    print(f"time sklearn / batched:          {sklearn_s / batched_s:7.2f}x")
    print()
    print(f"{'task':28}{'batched':>9}{'loop':>9}{'sklearn':>9}")
    for p in problems:
        loop_task = [loop_scores[(p.name, s)] for s in protocol.seeds if (p.name, s) in loop_scores]
        loop_text = f"{np.mean(loop_task):9.2f}" if loop_task else f"{'-':>9}"
        print(f"{p.name:28}{per_task_batched[p.name]:9.2f}{loop_text}{sklearn_scores[p.name]:9.2f}")


if __name__ == "__main__":
    main()
