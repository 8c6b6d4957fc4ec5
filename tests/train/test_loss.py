"""The fused output layer + cross-entropy equals the plain `F.cross_entropy(x @ Wᵀ)`: losses and gradients,
in one chunk and in many, with ignored positions, and in bf16 (FSDP's compute dtype on GPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import train.loss as loss_module
from train.loss import linear_cross_entropy


@pytest.mark.parametrize("chunk_logits", [2**26, 3 * 1000])  # one chunk; 3 rows a chunk
def test_losses_and_gradients_equal_the_plain_path(monkeypatch, chunk_logits: int) -> None:
    monkeypatch.setattr(loss_module, "CHUNK_LOGITS", chunk_logits)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 16, generator=g, requires_grad=True)
    w = torch.randn(1000, 16, generator=g, requires_grad=True)
    targets = torch.randint(0, 1000, (10,), generator=g)
    targets[[3, 9]] = -100
    total, per_token = linear_cross_entropy(x, w, targets)
    (0.37 * total).backward()
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = F.cross_entropy(x2 @ w2.t(), targets, reduction="none", ignore_index=-100)
    (0.37 * ref.sum()).backward()
    assert not per_token.requires_grad and per_token[3] == 0 and per_token[9] == 0
    torch.testing.assert_close(per_token, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(total, ref.sum(), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(x.grad, x2.grad, rtol=0, atol=1e-5)
    torch.testing.assert_close(w.grad, w2.grad, rtol=0, atol=1e-5)


def test_bf16_inputs_give_bf16_gradients_close_to_fp32() -> None:
    g = torch.Generator().manual_seed(1)
    x32, w32 = torch.randn(8, 32, generator=g), torch.randn(500, 32, generator=g) * 0.1
    targets = torch.randint(0, 500, (8,), generator=g)
    x, w = x32.bfloat16().requires_grad_(), w32.bfloat16().requires_grad_()
    total, _ = linear_cross_entropy(x, w, targets)
    total.backward()
    assert x.grad.dtype == w.grad.dtype == torch.bfloat16
    ref = F.cross_entropy(x32 @ w32.t(), targets, reduction="sum")
    assert total.item() == pytest.approx(ref.item(), rel=2e-2)


def test_without_grad_there_is_no_gradient_work() -> None:
    x, w = torch.randn(4, 8, requires_grad=True), torch.randn(50, 8, requires_grad=True)
    with torch.no_grad():
        total, per_token = linear_cross_entropy(x, w, torch.zeros(4, dtype=torch.long))
    assert not total.requires_grad and per_token.shape == (4,)
