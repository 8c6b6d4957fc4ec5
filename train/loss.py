"""The output layer and cross-entropy fused, a chunk of rows at a time (as Liger's and OLMo-core's fused
losses): the (N, V) logits and their gradient never exist whole.

The plain path, `F.cross_entropy(x @ Wᵀ, y)`, keeps fp32 logits of N × V (vocabulary 50,304: 200 KB per
token), then backward fills a zero tensor of the same size, runs log-softmax backward over it and multiplies
it out: at OLMo's vocabulary that is most of a small model's step on a CPU and gigabytes of a large one's
memory on a GPU. Here each chunk's logits are made, reduced to losses, turned in place into their gradient
(softmax − one-hot) and multiplied into ∂x and ∂W at once, in forward; backward only scales the two by the
incoming gradient of the summed loss. That is exact for the trainer, which backpropagates the sum of the
token losses (times a constant) only: the per-token losses come out non-differentiable, for logging.

The matmuls are the same three as the plain path (logits, ∂x, ∂W), in the input dtype (bf16 under FSDP's
mixed precision); the softmax and ∂W's accumulation are fp32.
"""

from __future__ import annotations

import torch

IGNORE = -100
"""Target id of positions without a loss (the last position of each sequence)."""
CHUNK_LOGITS = 2**26
"""Logits per chunk (rows × V): 256 MB in fp32; rows = max(1, CHUNK_LOGITS // V)."""


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x_ND: torch.Tensor,
        w_VD: torch.Tensor,
        targets_N: torch.Tensor,
        need_grad: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        N, V = x_ND.shape[0], w_VD.shape[0]
        rows = max(1, CHUNK_LOGITS // V)
        losses_N = torch.empty(N, dtype=torch.float32, device=x_ND.device)
        grad_x = torch.empty_like(x_ND) if need_grad else None
        grad_w = torch.zeros(w_VD.shape, dtype=torch.float32, device=w_VD.device) if need_grad else None
        for s in range(0, N, rows):
            x_CD, t_C = x_ND[s : s + rows], targets_N[s : s + rows]
            valid_C = t_C != IGNORE
            safe_C1 = t_C.clamp(min=0).unsqueeze(1)
            logits_CV = (x_CD @ w_VD.t()).float()
            lse_C = torch.logsumexp(logits_CV, dim=-1)
            target_C = logits_CV.gather(1, safe_C1).squeeze(1)
            losses_N[s : s + rows] = torch.where(valid_C, lse_C - target_C, 0.0)
            if not need_grad:
                continue
            g_CV = logits_CV.sub_(lse_C.unsqueeze(1)).exp_()  # softmax, in place of the logits
            g_CV.scatter_add_(1, safe_C1, -valid_C.to(g_CV.dtype).unsqueeze(1))  # − one-hot
            g_CV.mul_(valid_C.unsqueeze(1))  # ignored positions have no gradient
            g_CV = g_CV.to(x_ND.dtype)
            grad_x[s : s + rows] = g_CV @ w_VD
            grad_w += (g_CV.t() @ x_CD).float()
        ctx.mark_non_differentiable(losses_N)
        ctx.save_for_backward(*([grad_x, grad_w] if need_grad else []))
        ctx.w_dtype = w_VD.dtype
        return losses_N.sum(), losses_N

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_sum: torch.Tensor, _grad_losses: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        if not ctx.saved_tensors:
            raise RuntimeError("linear_cross_entropy was called with need_grad=False; it has no gradient")
        grad_x, grad_w = ctx.saved_tensors
        return grad_x * grad_sum.to(grad_x.dtype), (grad_w * grad_sum).to(ctx.w_dtype), None, None


def linear_cross_entropy(
    x_ND: torch.Tensor, w_VD: torch.Tensor, targets_N: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the token losses, differentiable; the (N,) fp32 token losses, not) of
    cross_entropy(x @ wᵀ, targets) with targets == IGNORE counting 0. Only the sum may be backpropagated."""
    need_grad = torch.is_grad_enabled() and (x_ND.requires_grad or w_VD.requires_grad)
    return _LinearCrossEntropy.apply(x_ND, w_VD, targets_N, need_grad)
