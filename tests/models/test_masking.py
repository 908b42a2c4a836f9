import torch

from brainmis.models.masking import IGNORE_INDEX, mask_tokens


def test_bert_masking_proportions():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (200, 100), generator=generator)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False  # [CLS] and [SEP]
    masked, labels = mask_tokens(
        ids, maskable, mask_token_id=4, vocab_size=1000, probability=0.15, generator=generator
    )
    chosen = labels != IGNORE_INDEX
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    share = chosen.sum() / maskable.sum()
    assert abs(share - 0.15) < 0.01
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])
    n = chosen.sum().item()
    as_mask = (masked[chosen] == 4).sum().item() / n
    unchanged = (masked[chosen] == ids[chosen]).sum().item() / n
    replaced = 1 - as_mask - unchanged
    assert abs(as_mask - 0.8) < 0.02
    assert abs(unchanged - 0.1) < 0.02  # (+ ~0.1% random draws equal to the original)
    assert abs(replaced - 0.1) < 0.02


def test_masking_is_reproducible_with_a_generator():
    ids = torch.randint(10, 100, (4, 30))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    first = mask_tokens(ids, maskable, 4, 100, generator=torch.Generator().manual_seed(3))
    second = mask_tokens(ids, maskable, 4, 100, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
