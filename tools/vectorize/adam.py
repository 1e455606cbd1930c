"""Adam whose parameter rows can be removed and appended between steps.

Paths are pruned and added during the fit; ``torch.optim.Adam`` would have to be rebuilt each time
and would lose the moments of the paths that stay. Here the moments are plain tensors indexed like
the parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor


class RowAdam:
    def __init__(self, param: Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr = lr
        self.b1, self.b2 = betas
        self.eps = eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = torch.zeros(param.shape[0], dtype=param.dtype, device=param.device)  # per-row step

    @torch.no_grad()
    def step(self, param: Tensor, grad: Tensor, lr: float | None = None) -> None:
        lr = self.lr if lr is None else lr
        self.t += 1
        self.m.mul_(self.b1).add_(grad, alpha=1 - self.b1)
        self.v.mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
        shape = (-1,) + (1,) * (param.dim() - 1)
        c1 = (1 - self.b1 ** self.t).view(shape)
        c2 = (1 - self.b2 ** self.t).view(shape)
        param.sub_(lr * (self.m / c1) / ((self.v / c2).sqrt() + self.eps))

    def keep(self, index: Tensor) -> None:
        self.m, self.v, self.t = self.m[index], self.v[index], self.t[index]

    def append(self, rows: int) -> None:
        z = torch.zeros((rows, *self.m.shape[1:]), dtype=self.m.dtype, device=self.m.device)
        self.m = torch.cat([self.m, z])
        self.v = torch.cat([self.v, z.clone()])
        self.t = torch.cat([self.t, torch.zeros(rows, dtype=self.t.dtype, device=self.t.device)])
