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
mixed precision); the softmax and ∂W's accumulation are fp32. Those three matmuls are the floor, and at a
small model's shape on a CPU (d 128, vocabulary 50,304) they are 80% of a training step, which is why
`torch.compile` of the blocks moves a CPU step by little and the passes around the matmuls matter: the
logits go into one reused buffer on CPU, the softmax takes one exp pass, ∂W accumulates in place and
backward scales the saved gradients in place (one backward per forward: a second, with retain_graph, is
refused by autograd's in-place check rather than scaled twice).
"""

from __future__ import annotations

import torch

IGNORE = -100
"""Target id of positions without a loss (the last position of each sequence)."""
CHUNK_LOGITS = 2**26
"""Logits per chunk (rows × V): 256 MB in fp32; rows = max(1, CHUNK_LOGITS // V)."""


_WORKSPACE: dict[torch.device, torch.Tensor] = {}
"""One fp32 logits buffer per CPU device, reused by every chunk of every call. A fresh 100 MB tensor (512
tokens × 50,304) comes from glibc's mmap, so each step paid a page fault per 4 KB on first touch: a third of
the logits matmul's time. CUDA's caching allocator already reuses memory, so GPUs allocate as before."""


def _logits_buffer(rows: int, V: int, device: torch.device) -> torch.Tensor:
    """A (rows, V) fp32 view of the device's workspace, grown when too small (never shrunk: one chunk's size
    at most, CHUNK_LOGITS × 4 bytes)."""
    buf = _WORKSPACE.get(device)
    if buf is None or buf.numel() < rows * V:
        buf = _WORKSPACE[device] = torch.empty(rows * V, dtype=torch.float32, device=device)
    return buf[: rows * V].view(rows, V)


def _softmax_minus_one_hot_(logits_CV: torch.Tensor, t_C: torch.Tensor) -> torch.Tensor:
    """Token losses (C,) of one chunk, and the chunk's fp32 logits turned in place into ∂loss/∂logits:
    softmax − one-hot, zero on ignored rows. One exp pass: the max is subtracted, exponentiated and summed once
    and the softmax is that scaled by 1/sum (logsumexp would make its own copy and exponentiate again)."""
    valid_C = t_C != IGNORE
    safe_C1 = t_C.clamp(min=0).unsqueeze(1)
    target_C = logits_CV.gather(1, safe_C1).squeeze(1)
    max_C1 = logits_CV.amax(dim=1, keepdim=True)
    exp_CV = logits_CV.sub_(max_C1).exp_()
    sum_C = exp_CV.sum(dim=1)
    losses_C = torch.where(valid_C, max_C1.squeeze(1) + sum_C.log() - target_C, 0.0)
    exp_CV.mul_((valid_C / sum_C).unsqueeze(1))  # softmax; ignored rows 0
    exp_CV.scatter_add_(1, safe_C1, -valid_C.to(exp_CV.dtype).unsqueeze(1))  # − one-hot
    return losses_C


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
        fp32_cpu = x_ND.dtype == w_VD.dtype == torch.float32 and x_ND.device.type == "cpu"
        losses_N = torch.empty(N, dtype=torch.float32, device=x_ND.device)
        grad_x = torch.empty_like(x_ND) if need_grad else None
        grad_w = None
        for s in range(0, N, rows):
            x_CD, t_C = x_ND[s : s + rows], targets_N[s : s + rows]
            if fp32_cpu:
                logits_CV = torch.mm(x_CD, w_VD.t(), out=_logits_buffer(x_CD.shape[0], V, x_ND.device))
            else:
                logits_CV = (x_CD @ w_VD.t()).float()
            losses_N[s : s + rows] = _softmax_minus_one_hot_(logits_CV, t_C)
            if not need_grad:
                continue
            g_CV = logits_CV.to(x_ND.dtype)
            torch.mm(g_CV, w_VD, out=grad_x[s : s + rows])
            if grad_w is None:
                grad_w = (g_CV.t() @ x_CD).float()
            elif g_CV.dtype == torch.float32:
                grad_w.addmm_(g_CV.t(), x_CD)  # accumulate in place: no (V, D) temporary
            else:
                grad_w += (g_CV.t() @ x_CD).float()
        if need_grad and grad_w is None:  # no rows (N = 0): no chunk ran
            grad_w = torch.zeros(w_VD.shape, dtype=torch.float32, device=w_VD.device)
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
        # scaled in place (the graph is freed after this backward; retain_graph is not supported): two fewer
        # fresh (N, D) and (V, D) tensors
        grad_x = grad_x.mul_(grad_sum.to(grad_x.dtype))
        grad_w = grad_w.mul_(grad_sum) if grad_w.dtype == ctx.w_dtype else (grad_w * grad_sum).to(ctx.w_dtype)
        return grad_x, grad_w, None, None


def linear_cross_entropy(
    x_ND: torch.Tensor, w_VD: torch.Tensor, targets_N: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the token losses, differentiable; the (N,) fp32 token losses, not) of
    cross_entropy(x @ wᵀ, targets) with targets == IGNORE counting 0. Only the sum may be backpropagated."""
    need_grad = torch.is_grad_enabled() and (x_ND.requires_grad or w_VD.requires_grad)
    return _LinearCrossEntropy.apply(x_ND, w_VD, targets_N, need_grad)
