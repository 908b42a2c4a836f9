"""Probe a model on a list of tasks: features -> batched probes -> one score per (task, seed,
metric), optionally with controls.

Controls (Holmes): ``permuted_labels`` trains the same probes on labels shuffled across the
task's items (a probe that scores well there memorises, so ``selectivity/<metric>`` = score -
permuted score), ``permuted_words`` probes the same items with the words of every sentence
shuffled (``word_permutation``: what the words alone give, without their order), and
``random_weights`` probes a re-initialised copy of the model (what the architecture alone
gives). Their scores carry the metric prefixes ``permuted_labels/``, ``selectivity/``,
``permuted_words/`` and ``random_weights/``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from brainmis.evaluation.probing.holmes_reader import ProbingTask
from brainmis.evaluation.probing.metrics import score_test_predictions, seen_in_training
from brainmis.evaluation.probing.probe import ProbeProblem, ProbeProtocol, train_probes
from brainmis.evaluation.probing.representations import (
    RepresentationCache,
    TaskFeatures,
    encode_tasks,
)
from brainmis.evaluation.probing.word_permutation import word_permuted

CONTROLS = ("permuted_labels", "permuted_words", "random_weights")


@dataclass(frozen=True)
class ProbingScore:
    """One row of ``probing.csv`` (without run and epoch)."""

    task: str
    subfield: str
    seed: int
    metric: str
    score: float


def headline_metric(task: ProbingTask) -> str:
    """The metric reported per task in TensorBoard: accuracy, or Pearson r for regression."""
    return "pearson" if task.is_regression else "accuracy"


def _problem(features: TaskFeatures, labels: dict[str, np.ndarray]) -> ProbeProblem:
    task = features.task
    return ProbeProblem(
        name=task.name,
        x_train=features.splits["train"],
        y_train=labels["train"],
        x_dev=features.splits["dev"],
        y_dev=labels["dev"],
        x_test=features.splits["test"],
        num_labels=task.num_labels,
    )


def permuted_labels(task: ProbingTask, seed: int = 0) -> dict[str, np.ndarray]:
    """The task's labels shuffled across all its items (every split), per split."""
    names = ("train", "dev", "test")
    all_labels = np.concatenate([task.labels(name) for name in names])
    shuffled = np.random.default_rng(seed).permutation(all_labels)
    out, start = {}, 0
    for name in names:
        n = len(task.split(name))
        out[name] = shuffled[start : start + n]
        start += n
    return out


def _score_probes(
    task_features: list[TaskFeatures],
    labels: list[dict[str, np.ndarray]],
    protocol: ProbeProtocol,
    device: torch.device,
    prefix: str,
) -> dict[tuple[str, int, str], float]:
    problems = [_problem(f, y) for f, y in zip(task_features, labels, strict=True)]
    results = train_probes(problems, protocol, device=device)
    scores = {}
    for features, task_labels, task_results in zip(task_features, labels, results, strict=True):
        task = features.task
        seen = seen_in_training(task)
        for result in task_results:
            metrics = score_test_predictions(
                task_labels["test"], result.test_predictions, seen, task.is_regression
            )
            for metric, value in metrics.items():
                scores[(task.name, result.seed, prefix + metric)] = value
    return scores


def reinitialised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every weight drawn afresh (``reset_parameters`` of each
    layer, then the transformers initialisation where the model has one)."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            if hasattr(module, "reset_parameters") and module is not clone:
                module.reset_parameters()
        for module in clone.modules():
            init = getattr(module, "_init_weights", None)
            if callable(init) and hasattr(module, "config"):
                module.apply(init)
                break
    return clone


def probe_tasks(
    model: nn.Module,
    tokenizer,
    tasks: list[ProbingTask],
    protocol: ProbeProtocol | None = None,
    layer: int = -1,
    controls: tuple[str, ...] = (),
    cache: RepresentationCache | None = None,
    device: str | torch.device | None = None,
) -> list[ProbingScore]:
    """Scores of ``len(protocol.seeds)`` probes per task on the model's ``layer``.

    Metrics per probe: ``accuracy``, ``macro_f1`` (classification) or ``pearson``
    (regression), each also ``_seen``/``_unseen``; plus the control metrics asked for in
    ``controls`` (see module docstring). Probes train on ``device`` (default: the model's).
    """
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown:
        raise ValueError(f"unknown probing control(s) {unknown}; use {CONTROLS}")
    protocol = protocol or ProbeProtocol()
    cache = cache if cache is not None else RepresentationCache()
    if device is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
    device = torch.device(device)
    features = cache.features(model, tokenizer, tasks, layer)
    true_labels = [{s: t.labels(s) for s in ("train", "dev", "test")} for t in tasks]
    scores = _score_probes(features, true_labels, protocol, device, "")
    if "permuted_labels" in controls:
        shuffled = [permuted_labels(t) for t in tasks]
        control = _score_probes(features, shuffled, protocol, device, "permuted_labels/")
        scores.update(control)
        for (task, seed, metric), value in control.items():
            base = metric.removeprefix("permuted_labels/")
            if (task, seed, base) in scores:
                scores[(task, seed, f"selectivity/{base}")] = scores[(task, seed, base)] - value
    if "permuted_words" in controls:
        # not through ``cache``: its keys are item ids, which the shuffled copies share
        shuffled_features = encode_tasks(model, tokenizer, [word_permuted(t) for t in tasks], layer)
        scores.update(
            _score_probes(shuffled_features, true_labels, protocol, device, "permuted_words/")
        )
    if "random_weights" in controls:
        random_model = reinitialised_copy(model)
        random_features = RepresentationCache().features(random_model, tokenizer, tasks, layer)
        del random_model
        scores.update(
            _score_probes(random_features, true_labels, protocol, device, "random_weights/")
        )
    subfield = {t.name: t.subfield for t in tasks}
    return [
        ProbingScore(task, subfield[task], seed, metric, float(value))
        for (task, seed, metric), value in scores.items()
    ]


def task_means(scores: list[ProbingScore], metric_of: dict[str, str]) -> dict[str, float]:
    """Task -> mean over seeds of its headline metric (``metric_of[task]``)."""
    sums: dict[str, list[float]] = {}
    for row in scores:
        if metric_of.get(row.task) == row.metric:
            sums.setdefault(row.task, []).append(row.score)
    return {task: float(np.mean(values)) for task, values in sums.items()}


def subfield_means(task_scores: dict[str, float], subfield_of: dict[str, str]) -> dict[str, float]:
    """Subfield -> mean over its tasks of the per-task scores."""
    groups: dict[str, list[float]] = {}
    for task, value in task_scores.items():
        groups.setdefault(subfield_of[task], []).append(value)
    return {name: float(np.mean(values)) for name, values in sorted(groups.items())}
