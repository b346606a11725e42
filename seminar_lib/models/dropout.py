"""Dropout whose mask is the same on every CPU: the course's models use it instead of ``nn.Dropout``.

``nn.Dropout`` draws its mask with ``bernoulli_``, and on the CPU torch draws that with MKL's random
streams on an Intel processor but with its own generator on any other: the same seed gives other masks
on an AMD machine than on an Intel one, so a model trained with dropout (DSSM's towers) reproduced its
numbers only on the vendor that made them — a notebook regenerated on AMD failed nbval on Intel. Here
the mask is ``uniform ≥ p`` from ``torch.rand_like`` (torch's own generator on every CPU), which is
also about three times faster than ``bernoulli_`` on the CPU.
"""

from __future__ import annotations

import torch
from torch import nn


class Dropout(nn.Dropout):
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1−p)``.

    The same distribution as ``nn.Dropout`` (and an instance of it, for code that looks for one); the
    mask is drawn as ``uniform ≥ p``, the same on every CPU vendor (see the module docstring).
    Shapes: any ``x`` → the same shape.
    """

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        super().__init__(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))   # 0 or 1/(1−p), one tensor
        return x * mask
