"""Dropout that draws from the running fit's own generator (reproducible in threads)."""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from .._random import fit_generator

__all__ = ["Dropout"]


class Dropout(nn.Dropout):
    """``torch.nn.Dropout`` whose mask comes from the fit's generator while a fit trains it.

    ``nn.Dropout`` draws from torch's global RNG, which fits running in
    other threads share; while a skprune estimator trains the network, this
    layer draws from that fit's own generator instead, so the same
    ``random_state`` gives the same model under any joblib backend. Outside
    a fit (or in ``eval`` mode, or while traced) it is ``nn.Dropout``.

    Parameters
    ----------
    p : float, default=0.5
        Probability of an element to be zeroed.
    inplace : bool, default=False
        As in ``torch.nn.Dropout`` (the fit's own draw is never in place).

    Examples
    --------
    >>> import torch
    >>> from skprune.nn import Dropout
    >>> layer = Dropout(0.5).eval()
    >>> bool(torch.equal(layer(torch.ones(3)), torch.ones(3)))
    True
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 (torch's name)
        """Zero entries with probability ``p`` and scale the rest by ``1 / (1 - p)`` in training."""
        if not self.training or self.p == 0 or isinstance(input, torch.fx.Proxy):
            return F.dropout(input, self.p, self.training, self.inplace)
        generator = fit_generator(input.device)
        if generator is None:
            return F.dropout(input, self.p, self.training, self.inplace)
        if self.p == 1:
            return input * 0.0
        keep = torch.empty_like(input).bernoulli_(1.0 - self.p, generator=generator)
        return input * keep / (1.0 - self.p)
