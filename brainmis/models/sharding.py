"""Training a model that does not fit one GPU: FSDP over the transformer blocks.

``BlockFSDPStrategy`` is Lightning's ``FSDPStrategy`` with what brainmis needs filled in
from the model itself when the trainer wraps it (a YAML preset cannot name a model's block
class in advance; ``configs/shared/trainer_fsdp.yaml``):

- **wrap policy**: one FSDP unit per transformer block (``block_classes``: the classes the
  model's ``_no_split_modules`` names, which Hugging Face model classes declare; else the
  element class of the ``ModuleList`` holding ``num_hidden_layers`` blocks), one for the
  brain head, and the root unit for the rest (embeddings, final norm, LM head);
- **activation checkpointing** on the same blocks (``activation_checkpointing: true``);
- **use_orig_params** (Lightning's default, kept): LoRA's trainable weights and the frozen
  base share a flat parameter per block, and the optimizer sees the original parameters;
- **mixed precision** (``param_dtype: bfloat16``): FSDP keeps every parameter's sharded
  master copy in float32 (so the base is cast to float32 before wrapping: a flat parameter
  holds one dtype) and gathers the blocks' weights in bf16 for compute; the brain head is
  excluded (its unit gathers and computes in float32), gradients are reduced in float32.
  ``param_dtype: null`` = float32 throughout (the CPU tests).

Checkpoints: ``state_dict_type: full`` (the default) gathers the full state dict on rank 0,
from which ``BrainMisalignmentModule.on_save_checkpoint`` keeps LoRA + head
(``clean_parameter_name`` drops FSDP's and activation checkpointing's wrapper names), so a
checkpoint is the same file as a single-device one and ``load_checkpoint_module`` reads it.

Gradient clipping of the LoRA weights: each rank holds a shard of every gradient, so the
norm is summed over ranks (``clip_grad_norm``); only the sharding strategies that keep each
element on one rank (``FULL_SHARD``, ``SHARD_GRAD_OP``) are accepted.

``start_method: fork`` starts the processes by forking (tests, one CPU machine), as
``ddp_fork``; by default Lightning starts them as scripts, or uses those that SLURM's srun
or torchrun started.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher
from torch import nn

from brainmis.errors import BrainmisInputError
from brainmis.models.brain_head import BrainHead
from brainmis.models.quantization import is_quantized

# Names that FSDP and activation checkpointing insert into parameter names.
WRAPPER_NAMES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
PARAM_DTYPES = ("bfloat16", "float16", None)
SINGLE_OWNER_SHARDING = ("FULL_SHARD", "SHARD_GRAD_OP")


def clean_parameter_name(name: str) -> str:
    """``name`` without the wrapper modules' names (the unwrapped model's name)."""
    for wrapper in WRAPPER_NAMES:
        name = name.replace(wrapper, "")
    return name


def block_classes(model: nn.Module) -> set[type[nn.Module]]:
    """The transformer block classes of ``model`` (peft- or Lightning-wrapped or not).

    The classes named by any submodule's ``_no_split_modules`` that occur in the tree; else
    the element class of the ``ModuleList`` whose length is the config's
    ``num_hidden_layers``. Raises ``BrainmisInputError`` when neither finds a block.
    """
    names: set[str] = set()
    layer_counts: set[int] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
        count = getattr(getattr(module, "config", None), "num_hidden_layers", None)
        if isinstance(count, int):
            layer_counts.add(count)
    found = {type(module) for module in model.modules() if type(module).__name__ in names}
    if found:
        return found
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) in layer_counts:
            kinds = {type(child) for child in module}
            if len(kinds) == 1:
                return kinds
    raise BrainmisInputError(
        None,
        "FSDP: cannot find the model's transformer blocks (no _no_split_modules and no "
        "ModuleList of num_hidden_layers blocks)",
    )


def is_sharded(trainer: Any) -> bool:
    """True when ``trainer`` trains with FSDP (a forward pass then needs every rank)."""
    return isinstance(getattr(trainer, "strategy", None), FSDPStrategy)


def clip_grad_norm(parameters: list[torch.Tensor], max_norm: float, sharded: bool) -> torch.Tensor:
    """Clip the gradients of ``parameters`` to a total norm of ``max_norm``; returns the norm.

    ``sharded``: each rank holds a disjoint shard of the gradients (FSDP with
    ``use_orig_params``), so the squared norms are summed over the ranks first.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    device = grads[0].device if grads else torch.device("cpu")
    squared = torch.zeros((), device=device, dtype=torch.float32)
    for grad in grads:
        squared += grad.detach().float().pow(2).sum()
    if sharded and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(squared)
    total = squared.sqrt()
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for grad in grads:
        grad.detach().mul_(scale.to(grad.dtype))
    return total


def _uniform_float32(model: nn.Module) -> None:
    """Cast every floating parameter and buffer to float32 (a flat parameter holds one
    dtype, and LoRA and head are float32)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            tensor.data = tensor.data.float()


def _no_kv_cache(model: nn.Module) -> None:
    """``use_cache = False`` in every config: a block recomputed in the backward pass would
    append its keys and values to the forward's cache a second time."""
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "use_cache", None):
            config.use_cache = False


class _ForkedFSDPLauncher(_MultiProcessingLauncher):
    """Lightning's fork launcher, handing the parent the trainable weights (LoRA + head)
    of the full state dict: Lightning's own hands back each rank's local module state,
    whose flattened shards the parent's module cannot load."""

    def _collect_rank_zero_results(self, trainer: Any, results: Any) -> Any:
        import os
        import tempfile

        from lightning.pytorch.strategies.launchers.multiprocessing import _WorkerOutput
        from lightning.pytorch.trainer.states import TrainerFn

        full = self._strategy.lightning_module_state_dict()  # a collective: every rank
        if self._strategy.local_rank != 0:
            return None
        keep = {
            clean_parameter_name(name)
            for name, parameter in trainer.lightning_module.named_parameters()
            if parameter.requires_grad
        }
        weights = {key: value for key, value in full.items() if key in keep}
        weights_path = None
        if trainer.state.fn == TrainerFn.FITTING:
            weights_path = os.path.join(tempfile.mkdtemp(), ".temp.ckpt")
            self._strategy.checkpoint_io.save_checkpoint(weights, weights_path)
        callback = trainer.checkpoint_callback
        best = getattr(callback, "best_model_path", None) if callback else None
        extra = self.get_extra_results(trainer)
        return _WorkerOutput(best, weights_path, trainer.state, results, extra)


class BlockFSDPStrategy(FSDPStrategy):
    """``FSDPStrategy`` wrapping each transformer block of the model it is given.

    Args:
        param_dtype: dtype the blocks' weights are gathered and computed in (``bfloat16``,
            ``float16``) or None for float32. Master weights, LoRA's and the head's
            optimizer state and the gradient reduction stay float32; the head also computes
            in float32.
        activation_checkpointing: recompute each block's activations in the backward pass.
        start_method: ``fork`` to fork the processes (one CPU machine, tests); None = as
            Lightning's FSDP (script launcher, or processes started by srun/torchrun).
        **kwargs: ``FSDPStrategy`` arguments (``sharding_strategy``, ``state_dict_type``,
            ``cpu_offload``, ``process_group_backend`` ...); ``auto_wrap_policy``,
            ``mixed_precision`` and the activation-checkpointing policies are set here.
    """

    strategy_name = "brainmis_fsdp"

    def __init__(
        self,
        param_dtype: str | None = "bfloat16",
        activation_checkpointing: bool = True,
        start_method: str | None = None,
        **kwargs: Any,
    ):
        for reserved in ("auto_wrap_policy", "mixed_precision", "activation_checkpointing_policy"):
            if kwargs.pop(reserved, None) is not None:
                raise BrainmisInputError(
                    None, f"trainer.strategy: {reserved} is derived from the model; leave it out"
                )
        if param_dtype not in PARAM_DTYPES:
            raise BrainmisInputError(
                None, f"trainer.strategy.param_dtype {param_dtype!r}: use one of {PARAM_DTYPES}"
            )
        sharding = kwargs.get("sharding_strategy", "FULL_SHARD")
        sharding = str(getattr(sharding, "name", sharding)).upper()  # a str or the enum
        if sharding not in SINGLE_OWNER_SHARDING:
            raise BrainmisInputError(
                None,
                f"trainer.strategy.sharding_strategy {sharding!r}: use one of "
                f"{SINGLE_OWNER_SHARDING} (LoRA's gradient clipping sums one shard per rank)",
            )
        if start_method not in (None, "fork"):
            raise BrainmisInputError(
                None, f"trainer.strategy.start_method {start_method!r}: use fork or null"
            )
        super().__init__(**kwargs)
        self.param_dtype = param_dtype
        self.checkpoint_blocks = activation_checkpointing
        self.start_method = start_method

    def _configure_launcher(self) -> None:
        if self.start_method is None:
            super()._configure_launcher()
        else:
            self._launcher = _ForkedFSDPLauncher(self, start_method=self.start_method)

    def lightning_module_state_dict(self) -> dict[str, Any]:
        """Lightning's, except on the CPU: there a full state dict gathered with
        ``offload_to_cpu=True`` (Lightning's setting) crashed (SIGSEGV while cloning the
        gathered tensors, torch 2.13), so it is gathered without offloading."""
        if self.root_device.type != "cpu" or self._state_dict_type != "full":
            return super().lightning_module_state_dict()
        from torch.distributed.fsdp import FullStateDictConfig, StateDictType
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        config = FullStateDictConfig(offload_to_cpu=False, rank0_only=True)
        with FSDP.state_dict_type(self.model, StateDictType.FULL_STATE_DICT, config):
            return self.model.state_dict()

    def optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        """Lightning's, except on the CPU: there the full optimizer state gathered with
        ``offload_to_cpu=True`` came out with AdamW's first moment holding the second
        moment's values (torch 2.13), so a resumed fit was not exact; it is gathered
        without offloading."""
        if self.root_device.type != "cpu" or self._state_dict_type != "full":
            return super().optimizer_state(optimizer)
        from lightning.pytorch.core.optimizer import LightningOptimizer
        from torch.distributed.fsdp import (
            FullOptimStateDictConfig,
            FullStateDictConfig,
            OptimStateKeyType,
            StateDictType,
        )
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        if isinstance(optimizer, LightningOptimizer):
            optimizer = optimizer._optimizer
        with FSDP.state_dict_type(
            self.model,
            StateDictType.FULL_STATE_DICT,
            FullStateDictConfig(offload_to_cpu=False, rank0_only=True),
            FullOptimStateDictConfig(offload_to_cpu=False, rank0_only=True),
        ):
            state = FSDP.optim_state_dict(self.model, optimizer)
            if self.global_rank == 0:  # keyed by parameter id, as Lightning stores it
                state = FSDP.rekey_optim_state_dict(state, OptimStateKeyType.PARAM_ID, self.model)
            return state

    def _setup_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.fsdp import MixedPrecision
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        if is_quantized(model):
            raise BrainmisInputError(
                None, "FSDP shards float weights; model.quantization (4bit/8bit) is for one GPU"
            )
        blocks = block_classes(model)
        _uniform_float32(model)
        self.kwargs["auto_wrap_policy"] = ModuleWrapPolicy(blocks | {BrainHead})
        if self.checkpoint_blocks:
            _no_kv_cache(model)
            self._activation_checkpointing_kwargs = {"auto_wrap_policy": ModuleWrapPolicy(blocks)}
        if self.param_dtype is not None:
            self.mixed_precision = MixedPrecision(
                param_dtype=getattr(torch, self.param_dtype),
                reduce_dtype=torch.float32,
                buffer_dtype=getattr(torch, self.param_dtype),
                _module_classes_to_ignore=(BrainHead,),
            )
        if self.root_device.type != "cpu":
            return super()._setup_model(model)
        return self._setup_model_on_cpu(model)

    def _setup_model_on_cpu(self, model: nn.Module) -> nn.Module:
        """Lightning's wrapping with ``device_id=cpu`` (Lightning passes None there, and
        FSDP then looks for an accelerator and refuses); the CPU tests' path."""
        from lightning.fabric.strategies.fsdp import _setup_activation_checkpointing
        from lightning.pytorch.strategies.fsdp import _move_torchmetrics_to_device
        from torch.distributed.fsdp import FullyShardedDataParallel

        model = FullyShardedDataParallel(
            module=model,
            cpu_offload=self.cpu_offload,
            mixed_precision=self.mixed_precision_config,
            sharding_strategy=self.sharding_strategy,
            device_id=torch.device("cpu"),
            **self.kwargs,
        )
        _move_torchmetrics_to_device(model, self.root_device)
        _setup_activation_checkpointing(model, self._activation_checkpointing_kwargs)
        return model
