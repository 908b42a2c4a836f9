"""``brainmis make-tiny-model``: a small model of one of ``TINY_FAMILIES`` with a tokenizer
trained on a text.

The folder is written with ``save_pretrained``, so tests and the demo load it through the
same path as a real checkpoint (``brainmis.models.backbone``). A short optional language-model
pre-training on the same text gives the model real language features and LM losses that mean
something. Masked families get a WordPiece tokenizer like BERT's, ``gpt2`` and ``gpt_neox`` a
byte-level BPE like GPT-2's, the other causal families one like Llama's (``<s>`` prepended).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import trainers as tokenizer_trainers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

from brainmis.errors import BrainmisInputError, refuse_non_empty_dir
from brainmis.models.masking import mask_tokens

# the narrative the synthetic brain reads (brainmis.data.synthetic.stimulus.default_text_path)
DEFAULT_TEXT = Path(__file__).resolve().parent.parent / "data" / "synthetic" / "narrative.txt"
MAX_POSITIONS = 512  # tokens; windows of 5 TRs of text stay far below this
PRETRAIN_SEQUENCE_TOKENS = 64
PRETRAIN_BATCH_SIZE = 16
PRETRAIN_LR = 2e-3
# model_type of every family a tiny model can be made of (docs/models.md has the tested table)
MASKED_TINY_FAMILIES = ("bert", "roberta", "deberta-v2", "modernbert")
CAUSAL_TINY_FAMILIES = ("gpt2", "llama", "qwen2", "mistral", "olmo2", "gemma", "phi3", "gpt_neox")
TINY_FAMILIES = (*MASKED_TINY_FAMILIES, *CAUSAL_TINY_FAMILIES)
GPT2_TOKENIZER_FAMILIES = ("gpt2", "gpt_neox")  # byte-level BPE, <|endoftext|>, no BOS added


def tokenizer_kind(family: str) -> str:
    """``wordpiece`` (masked families), ``gpt2`` or ``llama`` (the other causal families)."""
    if family in MASKED_TINY_FAMILIES:
        return "wordpiece"
    return "gpt2" if family in GPT2_TOKENIZER_FAMILIES else "llama"


def read_text(text: str | Path) -> str:
    """The text of a UTF-8 file; raise if it is missing or has too few words to train on."""
    path = Path(text)
    if not path.is_file():
        raise BrainmisInputError(path, "text file not found")
    content = path.read_text(encoding="utf-8")
    if len(content.split()) < 20:
        raise BrainmisInputError(path, "text has fewer than 20 words; too little to train on")
    return content


def train_tokenizer(family: str, text: str, vocab_size: int) -> PreTrainedTokenizerFast:
    """A fast tokenizer of the family's kind (``tokenizer_kind``), trained on ``text``.

    wordpiece: WordPiece with ``[CLS] [SEP] [MASK] [PAD] [UNK]``; gpt2: byte-level BPE with
    ``<|endoftext|>`` (as BOS, EOS and UNK, no pad token, like GPT-2); llama: byte-level BPE
    with ``<s>`` prepended and ``</s>`` as EOS (and as UNK and pad).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    kind = tokenizer_kind(family)
    if kind == "wordpiece":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = tokenizer_trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=specials, show_progress=False
        )
        tokenizer.train_from_iterator(lines, trainer)
        cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        tokenizer.decoder = decoders.WordPiece()
        names = dict(
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
    else:
        specials = ["<|endoftext|>"] if kind == "gpt2" else ["<s>", "</s>"]
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = tokenizer_trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(lines, trainer)
        byte_level = processors.ByteLevel(trim_offsets=True)
        if kind == "gpt2":
            tokenizer.post_processor = byte_level
            names = dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>")
            names["unk_token"] = "<|endoftext|>"
        else:
            bos_id = tokenizer.token_to_id("<s>")
            tokenizer.post_processor = processors.Sequence(
                [
                    byte_level,
                    processors.TemplateProcessing(
                        single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", bos_id)]
                    ),
                ]
            )
            # unk and pad named, so that a family's own tokenizer class (Qwen2's) adds none
            names = dict(bos_token="<s>", eos_token="</s>", unk_token="</s>", pad_token="</s>")
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=MAX_POSITIONS, **names
    )


def tiny_config(
    family: str, tokenizer: PreTrainedTokenizerFast, hidden: int, layers: int, heads: int
) -> PretrainedConfig:
    """A small model config of the family for this tokenizer's vocabulary."""
    vocab_size = len(tokenizer)
    if family == "bert":
        return BertConfig(
            vocab_size=vocab_size,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=4 * hidden,
            max_position_embeddings=MAX_POSITIONS,
            pad_token_id=tokenizer.pad_token_id,
        )
    if family == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_positions=MAX_POSITIONS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    if family != "llama":
        return AutoConfig.for_model(
            family, **family_config_settings(family, tokenizer, hidden, layers, heads)
        )
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )


def family_config_settings(
    family: str, tokenizer: PreTrainedTokenizerFast, hidden: int, layers: int, heads: int
) -> dict:
    """Config fields of a tiny model of a family built by ``AutoConfig.for_model``: the
    shared sizes, the tokenizer's special ids, and what the family needs on top (RoBERTa's
    position offset, Gemma's head size, no sliding window)."""
    shared = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=MAX_POSITIONS,
    )
    if family in MASKED_TINY_FAMILIES:
        specials = dict(
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
        extra = {
            "roberta": dict(max_position_embeddings=MAX_POSITIONS + 2, type_vocab_size=1),
            "modernbert": dict(
                cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id
            ),
        }
        return {**shared, **specials, **extra.get(family, {})}
    specials = dict(
        pad_token_id=None, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    kv_heads = dict(num_key_value_heads=heads)
    extra = {
        "qwen2": kv_heads,
        "mistral": dict(kv_heads, sliding_window=None),
        "olmo2": kv_heads,
        "gemma": dict(kv_heads, head_dim=hidden // heads),
        "phi3": dict(kv_heads, original_max_position_embeddings=MAX_POSITIONS),
        "gpt_neox": {},
    }
    return {**shared, **specials, **extra[family]}


def pretrain_language_model(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerFast,
    family: str,
    text: str,
    steps: int,
    seed: int,
) -> list[float]:
    """Train the whole model for ``steps`` AdamW steps on random 64-token spans of ``text``
    (masked LM for the masked families, next-token for the causal ones). Returns the loss of
    every step."""
    stream = torch.tensor(tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids)
    span = min(PRETRAIN_SEQUENCE_TOKENS, len(stream) - 1)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0)))
    )
    losses: list[float] = []
    model.train()
    for _ in range(steps):
        starts = torch.randint(
            0, len(stream) - span + 1, (PRETRAIN_BATCH_SIZE,), generator=generator
        )
        body = torch.stack([stream[s : s + span] for s in starts.tolist()])
        if family in MASKED_TINY_FAMILIES:
            cls = torch.full((len(body), 1), tokenizer.cls_token_id)
            sep = torch.full((len(body), 1), tokenizer.sep_token_id)
            ids = torch.cat([cls, body, sep], dim=1)
            maskable = torch.ones_like(ids, dtype=torch.bool)
            maskable[:, 0] = maskable[:, -1] = False
            ids, labels = mask_tokens(
                ids, maskable, tokenizer.mask_token_id, len(tokenizer), generator=generator
            )
        else:
            bos = torch.full((len(body), 1), tokenizer.bos_token_id)
            ids = torch.cat([bos, body], dim=1)
            labels = ids.clone()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def make_tiny_model(
    family: str,
    text: str | Path = DEFAULT_TEXT,
    out: str | Path = "checkpoints/hf/tiny",
    hidden: int = 64,
    layers: int = 2,
    heads: int = 2,
    vocab: int = 1000,
    pretrain_steps: int = 0,
    seed: int = 0,
) -> Path:
    """Train a tokenizer on the text file ``text``, build a ``family`` model of the given
    size, optionally LM-pretrain it for ``pretrain_steps`` steps, and ``save_pretrained``
    both into ``out`` (which must not exist or be empty). Returns ``out``."""
    out = refuse_non_empty_dir(out)
    if family not in TINY_FAMILIES:
        raise BrainmisInputError(
            None, f"unknown model family {family!r}; use one of {', '.join(TINY_FAMILIES)}"
        )
    if hidden % heads:
        raise BrainmisInputError(None, f"--hidden {hidden} is not divisible by --heads {heads}")
    content = read_text(text)
    tokenizer = train_tokenizer(family, content, vocab)
    config = tiny_config(family, tokenizer, hidden, layers, heads)
    auto_class = AutoModelForMaskedLM if family in MASKED_TINY_FAMILIES else AutoModelForCausalLM
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = auto_class.from_config(config)
    if pretrain_steps > 0:
        # dropout draws from the global generator: seed it too, or every call differs
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            pretrain_language_model(model, tokenizer, family, content, pretrain_steps, seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    reloaded = AutoTokenizer.from_pretrained(out, local_files_only=True)
    if len(reloaded) != len(tokenizer):  # the family's tokenizer class added tokens
        raise RuntimeError(f"{family}: the saved tokenizer reloads with other tokens")
    return out
