"""Inputs for loss tests, one maker per task, so every test feeds each loss what its task promises."""

from __future__ import annotations

import itertools

import torch

N_SAMPLES, N_CLASSES = 12, 4
EMBEDDING_DIM = 3
N_ANSWERS = 4  # preference: each prompt's policy is a softmax over this many answers; two are compared


def make_inputs(task: str, scale: float = 3.0, dtype: torch.dtype = torch.float64, seed: int = 0):
    """(pred, target) for a task; scale sets the magnitude of logits / predictions."""
    g = torch.Generator().manual_seed(seed)
    if task == "multiclass":
        pred = scale * torch.randn(N_SAMPLES, N_CLASSES, generator=g, dtype=dtype)
        target = torch.randint(0, N_CLASSES, (N_SAMPLES,), generator=g)
    elif task == "binary":
        pred = scale * torch.randn(N_SAMPLES, generator=g, dtype=dtype)
        target = torch.randint(0, 2, (N_SAMPLES,), generator=g).to(dtype)
        target[:2] = torch.tensor([0.0, 1.0], dtype=dtype)  # both classes always present
    elif task == "regression":
        pred = scale * torch.randn(N_SAMPLES, generator=g, dtype=dtype)
        target = torch.randn(N_SAMPLES, generator=g, dtype=dtype)
    elif task == "embedding":
        pred = scale * torch.randn(N_SAMPLES, EMBEDDING_DIM, generator=g, dtype=dtype)
        target = torch.arange(N_SAMPLES) % N_CLASSES  # every label three times: each anchor has 2 positives
    elif task == "preference":
        # log-probabilities of the chosen (column 0) and rejected (column 1) answer among N_ANSWERS, under a
        # policy with logits of the given scale and a reference with logits of scale 1; the policy is the
        # sharper one (as after fine-tuning), so KTO's batch KL point z0 usually sits at its floor 0 (the
        # contract's gradcheck relies on it: test_preference asserts it for those inputs)
        policy_logits = scale * torch.randn(N_SAMPLES, N_ANSWERS, generator=g, dtype=dtype)
        reference_logits = torch.randn(N_SAMPLES, N_ANSWERS, generator=g, dtype=dtype)
        pred = torch.log_softmax(policy_logits, dim=-1)[:, :2]
        target = torch.log_softmax(reference_logits, dim=-1)[:, :2]
    else:
        raise ValueError(f"no test inputs for task {task!r}")
    return pred, target


def extreme_inputs(task: str, dtype: torch.dtype = torch.float32):
    """Inputs at the numeric edge: logits of +-1e4 (both right and wrong), residuals of +-1e6, embeddings of
    norm 1e4 with cosines of exactly +-1, preference log-probabilities of -1e4 and exactly 0 in every
    pattern."""
    if task == "multiclass":
        target = torch.arange(N_SAMPLES) % N_CLASSES
        pred = torch.zeros(N_SAMPLES, N_CLASSES, dtype=dtype)
        pred[0::2] = -1e4
        pred[0::2, :] = pred[0::2].scatter(1, target[0::2, None], 1e4)  # confidently right
        pred[1::2] = pred[1::2].scatter(
            1, ((target[1::2] + 1) % N_CLASSES)[:, None], 1e4
        )  # confidently wrong
        pred[1::2] -= 1e4 * (pred[1::2] == 0)
        return pred, target
    if task == "binary":
        pred = torch.tensor([1e4, -1e4] * (N_SAMPLES // 2), dtype=dtype)
        target = torch.tensor([1.0, 1.0, 0.0, 0.0] * (N_SAMPLES // 4), dtype=dtype)
        return pred, target
    if task == "regression":
        pred = torch.tensor([1e6, -1e6, 0.0] * (N_SAMPLES // 3), dtype=dtype)
        target = torch.zeros(N_SAMPLES, dtype=dtype)
        return pred, target
    if task == "embedding":
        # norms of 1e4; directions that coincide (cosine 1, distance 0) or are antipodal (cosine -1), for
        # positives and negatives alike: rows 0-5 point along +x, rows 6-11 along -x, odd rows tilted by 1e-5
        target = torch.arange(N_SAMPLES) % N_CLASSES
        pred = torch.zeros(N_SAMPLES, EMBEDDING_DIM, dtype=dtype)
        pred[:, 0] = 1e4 * torch.tensor([1.0] * (N_SAMPLES // 2) + [-1.0] * (N_SAMPLES // 2), dtype=dtype)
        pred[1::2, 1] = 0.1
        return pred, target
    if task == "preference":
        # every combination of log-probabilities -1e4 (p ~ 0) and 0 (p = 1) for (pi_w, pi_l, ref_w, ref_l):
        # 16 rows, margins h from -2e4 to 2e4, answers of probability exactly 1 (infinite odds)
        rows = torch.tensor(list(itertools.product((-1e4, 0.0), repeat=4)), dtype=dtype)  # (16, 4)
        return rows[:, :2].contiguous(), rows[:, 2:].contiguous()
    raise ValueError(f"no extreme inputs for task {task!r}")


def numerical_jacobian(fn, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central differences of fn at x, one column per entry of x.  # (*out, x.numel())"""
    flat = x.detach().reshape(-1)
    columns = []
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = eps
        columns.append((fn((flat + step).view_as(x)) - fn((flat - step).view_as(x))) / (2 * eps))
    return torch.stack(columns, dim=-1)
