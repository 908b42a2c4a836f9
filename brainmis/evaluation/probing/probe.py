"""Linear probes trained with the Holmes protocol, many at once.

Protocol (per probe): a linear layer on dropout(0.2) of the features, Adam (lr 1e-3, betas
0.9/0.999, eps 1e-8), a learning rate that rises linearly over the first 10% of the steps and
then falls linearly to 0 at the last possible step (``max_epochs`` epochs), batches of 16
shuffled items, at most 20 epochs, early stopping when the dev loss has not improved for 5
epochs, and the weights of the best dev epoch kept. Cross-entropy for classification, mean
squared error for regression (``num_labels = 1``).

``train_probes`` runs every (task, seed) probe of a list of tasks as one batched computation:
the probes are stacked as a ``(n_probes, n_features, n_classes)`` weight tensor, tasks are
zero-padded to common feature/class/item counts with masks, gradients are computed in closed
form, and Adam is applied per probe with its own step count, so a probe whose task has fewer
batches, or which has stopped early, is simply frozen. ``train_single_probe`` is the same
protocol written as an ordinary one-probe PyTorch loop; with dropout 0 both give the same
weights (tested), which is what makes the batched version trustworthy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
MASKED_LOGIT = -1e9


@dataclass(frozen=True)
class ProbeProtocol:
    """Hyper-parameters of a probe (defaults: Holmes)."""

    dropout: float = 0.2
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.1
    batch_size: int = 16
    max_epochs: int = 20
    patience: int = 5
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass
class ProbeProblem:
    """One task's data. ``x_*`` float32 ``(n, n_features)``; ``y_*`` int64 classes in
    ``[0, num_labels)`` or float32 targets when ``num_labels == 1``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_dev: np.ndarray
    y_dev: np.ndarray
    x_test: np.ndarray
    num_labels: int

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def n_outputs(self) -> int:
        return 1 if self.is_regression else self.num_labels


@dataclass
class ProbeResult:
    """A trained probe: ``test_predictions`` ``(n_test,)`` classes (int64) or values (float32)."""

    problem: str
    seed: int
    test_predictions: np.ndarray
    best_dev_loss: float
    epochs_trained: int


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return max(1, math.ceil(n_train / batch_size))


def lr_factor(step: int, total_steps: int, warmup_fraction: float) -> float:
    """Learning-rate multiplier before optimizer step ``step`` (0-based)."""
    warmup = max(1, math.ceil(warmup_fraction * total_steps))
    if step < warmup:
        return step / warmup
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup))


def _lr_factors(steps: torch.Tensor, totals: torch.Tensor, warmup_fraction: float) -> torch.Tensor:
    """``lr_factor`` for many probes at once: ``steps``, ``totals`` ``(n_probes,)``."""
    totals = totals.float()
    warmup = torch.ceil(warmup_fraction * totals).clamp(min=1)
    rising = steps / warmup
    falling = ((totals - steps) / (totals - warmup).clamp(min=1)).clamp(min=0)
    return torch.where(steps < warmup, rising, falling)


def initial_weights(
    n_features: int, n_outputs: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    """``W (n_features, n_outputs)``, ``b (n_outputs,)`` uniform in +-1/sqrt(n_features), as
    ``nn.Linear`` does, and the generator (seeded with ``seed``) that then shuffles batches."""
    generator = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / math.sqrt(max(1, n_features))
    weight = (torch.rand(n_features, n_outputs, generator=generator) * 2 - 1) * bound
    bias = (torch.rand(n_outputs, generator=generator) * 2 - 1) * bound
    return weight, bias, generator


def _loss_rows(outputs: torch.Tensor, targets: torch.Tensor, regression: bool) -> torch.Tensor:
    """Per-item loss ``(..., n)`` from outputs ``(..., n, C)`` and targets ``(..., n)``."""
    if regression:
        return (outputs[..., 0] - targets) ** 2
    log_probs = torch.log_softmax(outputs, dim=-1)
    return -log_probs.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)


def _output_gradient(
    outputs: torch.Tensor, targets: torch.Tensor, regression: bool
) -> torch.Tensor:
    """d loss_item / d outputs, ``(..., n, C)`` (closed form of ``_loss_rows``)."""
    if regression:
        return (2 * (outputs[..., 0] - targets)).unsqueeze(-1)
    gradient = torch.softmax(outputs, dim=-1)
    return gradient.scatter_add(
        -1, targets.long().unsqueeze(-1), -torch.ones_like(gradient[..., :1])
    )


def _pad_stack(arrays: list[np.ndarray], width: int | None, dtype: torch.dtype) -> tuple:
    """Stack ``(n_i, F_i)`` (or ``(n_i,)``) arrays to ``(T, max n, max F)`` with zeros, and the
    row counts."""
    n_max = max(1, max(len(a) for a in arrays))
    shape = (len(arrays), n_max) if width is None else (len(arrays), n_max, width)
    stacked = torch.zeros(shape, dtype=dtype)
    for t, array in enumerate(arrays):
        if len(array):
            values = torch.as_tensor(np.asarray(array))
            if width is None:
                stacked[t, : len(array)] = values.to(dtype)
            else:
                stacked[t, : len(array), : array.shape[1]] = values.to(dtype)
    return stacked, torch.tensor([len(a) for a in arrays])


def _train_group(
    problems: list[ProbeProblem], protocol: ProbeProtocol, device: torch.device, dropout_seed: int
) -> list[list[ProbeResult]]:
    """Batched training of every (problem, seed) probe; problems all classification or all
    regression."""
    regression = problems[0].is_regression
    seeds = list(protocol.seeds)
    n_tasks, n_seeds = len(problems), len(seeds)
    n_probes = n_tasks * n_seeds
    width = max(p.x_train.shape[1] for p in problems)
    n_out = max(p.n_outputs for p in problems)
    y_dtype = torch.float32 if regression else torch.long
    x_train, n_train = _pad_stack([p.x_train for p in problems], width, torch.float32)
    y_train, _ = _pad_stack([p.y_train for p in problems], None, y_dtype)
    x_dev, n_dev = _pad_stack([p.x_dev for p in problems], width, torch.float32)
    y_dev, _ = _pad_stack([p.y_dev for p in problems], None, y_dtype)
    x_test, n_test = _pad_stack([p.x_test for p in problems], width, torch.float32)
    x_train, y_train, x_dev, y_dev, x_test = (
        t.to(device) for t in (x_train, y_train, x_dev, y_dev, x_test)
    )
    task_of = torch.arange(n_tasks).repeat_interleave(n_seeds)  # probe -> task
    class_mask = torch.zeros(n_probes, 1, n_out, dtype=torch.bool)
    weight = torch.zeros(n_probes, width, n_out)
    bias = torch.zeros(n_probes, 1, n_out)
    generators = []
    for probe in range(n_probes):
        problem, seed = problems[probe // n_seeds], seeds[probe % n_seeds]
        w, b, generator = initial_weights(problem.x_train.shape[1], problem.n_outputs, seed)
        weight[probe, : w.shape[0], : w.shape[1]] = w
        bias[probe, 0, : b.shape[0]] = b
        class_mask[probe, 0, : problem.n_outputs] = True
        generators.append(generator)
    weight, bias, class_mask = weight.to(device), bias.to(device), class_mask.to(device)
    moments = [torch.zeros_like(t) for t in (weight, weight, bias, bias)]  # m_w, v_w, m_b, v_b
    steps_done = torch.zeros(n_probes, device=device)
    probe_steps = torch.tensor(
        [steps_per_epoch(int(n_train[t]), protocol.batch_size) for t in task_of.tolist()]
    )
    total_steps = (probe_steps * protocol.max_epochs).to(device)
    best = (weight.clone(), bias.clone())
    best_loss = torch.full((n_probes,), math.inf, device=device)
    since_best = torch.zeros(n_probes, dtype=torch.long, device=device)
    active = torch.ones(n_probes, dtype=torch.bool, device=device)
    epochs_trained = torch.zeros(n_probes, dtype=torch.long)
    dropout_generator = torch.Generator(device=device).manual_seed(dropout_seed)
    task_of_device = task_of.to(device)
    batch = protocol.batch_size
    max_steps = int(probe_steps.max())

    def outputs_of(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = torch.baddbmm(b, x, w)
        return out if regression else out.masked_fill(~class_mask, MASKED_LOGIT)

    for _epoch in range(protocol.max_epochs):
        if not bool(active.any()):
            break
        epochs_trained += active.cpu().long()
        order = torch.full((n_probes, max_steps * batch), -1, dtype=torch.long)
        for probe in torch.nonzero(active.cpu()).flatten().tolist():
            n = int(n_train[task_of[probe]])
            order[probe, :n] = torch.randperm(n, generator=generators[probe])
        order = order.view(n_probes, max_steps, batch).to(device)
        for step in range(max_steps):
            rows = order[:, step]  # (P, batch), -1 = no item
            valid = (rows >= 0).float()
            stepping = active & (valid.sum(1) > 0)
            if not bool(stepping.any()):
                continue
            safe_rows = rows.clamp(min=0)
            xb = x_train[task_of_device.unsqueeze(1), safe_rows]  # (P, batch, F)
            yb = y_train[task_of_device.unsqueeze(1), safe_rows]  # (P, batch)
            if protocol.dropout > 0:
                keep = torch.rand(xb.shape, generator=dropout_generator, device=device)
                xb = xb * (keep >= protocol.dropout) / (1 - protocol.dropout)
            grad_out = _output_gradient(outputs_of(xb, weight, bias), yb, regression)
            grad_out = grad_out * (valid / valid.sum(1, keepdim=True).clamp(min=1)).unsqueeze(-1)
            grad_out = grad_out * class_mask
            grads = (xb.transpose(1, 2) @ grad_out, grad_out.sum(1, keepdim=True))
            factors = _lr_factors(steps_done, total_steps, protocol.warmup_fraction)
            steps_done = steps_done + stepping.float()
            sel = stepping.float().view(-1, 1, 1)
            step_size = (protocol.learning_rate * factors).view(-1, 1, 1) * sel
            t = steps_done.clamp(min=1).view(-1, 1, 1)
            for index, (param, grad) in enumerate(zip((weight, bias), grads, strict=True)):
                m, v = moments[2 * index], moments[2 * index + 1]
                m.add_((grad - m).mul_(sel * (1 - ADAM_BETAS[0])))
                v.add_((grad * grad - v).mul_(sel * (1 - ADAM_BETAS[1])))
                m_hat = m / (1 - ADAM_BETAS[0] ** t)
                v_hat = v / (1 - ADAM_BETAS[1] ** t)
                param.sub_(step_size * m_hat / (v_hat.sqrt_() + ADAM_EPS))
        dev_valid = (
            torch.arange(x_dev.shape[1], device=device).unsqueeze(0)
            < n_dev.to(device)[task_of_device].unsqueeze(1)
        ).float()
        dev_out = outputs_of(x_dev[task_of_device], weight, bias)
        dev_loss = (_loss_rows(dev_out, y_dev[task_of_device], regression) * dev_valid).sum(1)
        dev_loss = dev_loss / dev_valid.sum(1).clamp(min=1)
        improved = active & (dev_loss < best_loss)
        best_loss = torch.where(improved, dev_loss, best_loss)
        best = (
            torch.where(improved.view(-1, 1, 1), weight, best[0]),
            torch.where(improved.view(-1, 1, 1), bias, best[1]),
        )
        since_best = torch.where(improved, 0, since_best + active.long())
        active = active & (since_best < protocol.patience)

    test_out = outputs_of(x_test[task_of_device], *best).cpu()
    results: list[list[ProbeResult]] = [[] for _ in problems]
    for probe in range(n_probes):
        task = probe // n_seeds
        n = int(n_test[task])
        out = test_out[probe, :n]
        predictions = out[:, 0].numpy().astype(np.float32) if regression else out.argmax(-1).numpy()
        results[task].append(
            ProbeResult(
                problem=problems[task].name,
                seed=seeds[probe % n_seeds],
                test_predictions=predictions,
                best_dev_loss=float(best_loss[probe]),
                epochs_trained=int(epochs_trained[probe]),
            )
        )
    return results


def train_probes(
    problems: list[ProbeProblem],
    protocol: ProbeProtocol | None = None,
    device: str | torch.device = "cpu",
    max_padded_values: int = 200_000_000,
    dropout_seed: int = 0,
) -> list[list[ProbeResult]]:
    """Train ``len(protocol.seeds)`` probes per problem, batched; ``result[i][k]`` is problem
    ``i``, seed ``protocol.seeds[k]``.

    Classification and regression problems train in separate batches; problems are grouped
    (similar train sizes together) so that the padded train features stay below
    ``max_padded_values`` floats.
    """
    protocol = protocol or ProbeProtocol()
    device = torch.device(device)
    for problem in problems:
        if len(problem.x_train) == 0 or len(problem.x_dev) == 0:
            raise ValueError(f"probing task {problem.name!r} needs train and dev items")
    results: dict[int, list[ProbeResult]] = {}
    for regression in (False, True):
        indices = [i for i, p in enumerate(problems) if p.is_regression == regression]
        indices.sort(key=lambda i: len(problems[i].x_train))
        group: list[int] = []
        for i in [*indices, None]:
            if i is not None:
                widest = max(problems[j].x_train.shape[1] for j in [*group, i])
                largest = len(problems[i].x_train)
                if (len(group) + 1) * largest * widest <= max_padded_values or not group:
                    group.append(i)
                    continue
            if group:
                trained = _train_group([problems[j] for j in group], protocol, device, dropout_seed)
                results.update(zip(group, trained, strict=True))
            group = [] if i is None else [i]
    return [results[i] for i in range(len(problems))]


def train_single_probe(
    problem: ProbeProblem, seed: int, protocol: ProbeProtocol | None = None
) -> ProbeResult:
    """The same protocol as an ordinary loop over one probe (reference and benchmark)."""
    protocol = protocol or ProbeProtocol()
    n_features, n_out = problem.x_train.shape[1], problem.n_outputs
    w, b, generator = initial_weights(n_features, n_out, seed)
    linear = nn.Linear(n_features, n_out)
    with torch.no_grad():
        linear.weight.copy_(w.T)
        linear.bias.copy_(b)
    model = nn.Sequential(nn.Dropout(protocol.dropout), linear)
    x_train, x_dev = torch.as_tensor(problem.x_train), torch.as_tensor(problem.x_dev)
    y_train, y_dev = torch.as_tensor(problem.y_train), torch.as_tensor(problem.y_dev)
    regression = problem.is_regression
    n_steps = steps_per_epoch(len(x_train), protocol.batch_size)
    total = n_steps * protocol.max_epochs
    optimizer = torch.optim.Adam(
        model.parameters(), lr=protocol.learning_rate, betas=ADAM_BETAS, eps=ADAM_EPS
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, protocol.warmup_fraction)
    )

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _loss_rows(model(x).unsqueeze(0), y.unsqueeze(0), regression).mean()

    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    best_loss, since_best, epochs = math.inf, 0, 0
    for _epoch in range(protocol.max_epochs):
        epochs += 1
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(x_train), protocol.batch_size):
            rows = order[start : start + protocol.batch_size]
            optimizer.zero_grad()
            loss_of(x_train[rows], y_train[rows]).backward()
            optimizer.step()
            schedule.step()
        model.eval()
        with torch.no_grad():
            dev_loss = float(loss_of(x_dev, y_dev))
        if dev_loss < best_loss:
            best_loss, since_best = dev_loss, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
            if since_best >= protocol.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(problem.x_test))
    predictions = out[:, 0].numpy().astype(np.float32) if regression else out.argmax(-1).numpy()
    return ProbeResult(problem.name, seed, predictions, best_loss, epochs)
