"""The CPU step with and without `trainer.compile` (issue 15: ≥ 1.3× HF transformers' step with compile on):
the compiled step trains the same numbers as the eager one, and the fused output layer, most of a small
model's CPU step and outside the compiled blocks, reuses its logits buffer and scales its gradients in place."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import train.loss as loss_module
from train.callbacks import Callback
from train.loop import Trainer
from train.loss import linear_cross_entropy


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 16, generator=g, requires_grad=True)
    w = torch.randn(700, 16, generator=g, requires_grad=True)
    targets = torch.randint(0, 700, (12,), generator=g)
    targets[5] = -100
    return x, w, targets


def test_the_cpu_logits_buffer_is_reused_by_every_call_and_the_gradients_stay_exact() -> None:
    x, w, targets = _inputs()
    loss_module._WORKSPACE.clear()
    linear_cross_entropy(x, w, targets)[0].backward()
    buffer = loss_module._WORKSPACE[torch.device("cpu")].data_ptr()
    x.grad = w.grad = None
    total, per_token = linear_cross_entropy(x, w, targets)  # the second call writes the same buffer
    (0.5 * total).backward()
    assert loss_module._WORKSPACE[torch.device("cpu")].data_ptr() == buffer
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = F.cross_entropy(x2 @ w2.t(), targets, reduction="none")
    (0.5 * ref.sum()).backward()
    torch.testing.assert_close(per_token, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(x.grad, x2.grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(w.grad, w2.grad, rtol=0, atol=1e-6)


def test_a_second_backward_through_the_fused_loss_is_refused_not_scaled_twice() -> None:
    x, w, targets = _inputs()
    total, _ = linear_cross_entropy(x, w, targets)
    total.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace operation"):
        total.backward()


@pytest.mark.slow  # inductor compiles fwd + bwd of one block: ~20 s on 2 busy cores with a warm cache
def test_the_compiled_step_trains_the_eager_steps_numbers(tiny_config) -> None:
    """Inductor's blocks against eager ones on the tiny model: same losses and gradient norms to fp32
    rounding (compilation reorders sums, so not bitwise)."""
    records = {}
    for compile_ in (False, True):
        cfg = tiny_config(
            f"trainer.compile={str(compile_).lower()}", "trainer.eval_every=0", run=str(compile_)
        )
        trainer = Trainer(cfg, callbacks=[Callback()])
        records[compile_] = [trainer.train_step(step) for step in (1, 2, 3)]
    for eager, compiled in zip(records[False], records[True], strict=True):
        assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-5)
        assert compiled["grad_norm"] == pytest.approx(eager["grad_norm"], rel=1e-4)
