"""Torch building blocks of the tabular (``mlp``) and sequence spaces.

Imported only by their builders, so that the spaces, the datasets and the CLI stay torch-free
until a model is built. Every matmul is an explicit torch op, so torch's flop counter (the
``analytic`` hardware backend) counts all of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SafeBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` that normalises a training batch of one row with its running statistics
    (plain ``BatchNorm1d`` raises on it, e.g. for a last batch of one)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1 and x.dim() == 2:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class DenseBlock(nn.Module):
    """``dropout(act(norm(linear(x))))``, plus ``x`` (through a bias-free projection when the
    widths differ) when ``residual``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: type[nn.Module],
        norm: str,
        dropout: float,
        residual: bool,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        norms: dict[str, nn.Module] = {
            "none": nn.Identity(),
            "batch": SafeBatchNorm1d(out_features),
            "layer": nn.LayerNorm(out_features),
        }
        self.norm = norms[norm]
        self.activation = activation()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.skip: nn.Module | None = None
        if residual:
            self.skip = (
                nn.Identity()
                if in_features == out_features
                else nn.Linear(in_features, out_features, bias=False)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.activation(self.norm(self.linear(x))))
        return out if self.skip is None else out + self.skip(x)


class EncoderLayer(nn.Module):
    """Pre-norm multi-head self-attention and a GELU feed-forward, each with a residual; on
    ``[B, T, d_model]``. Written out because ``nn.TransformerEncoderLayer``'s inference fast
    path and fused attention hide their matmuls from the flop counter."""

    def __init__(self, d_model: int, heads: int, ff: int) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (d_model // heads) ** -0.5
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Linear(ff, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        qkv = self.qkv(self.norm1(x)).view(batch, tokens, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attention = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        mixed = (attention @ v).transpose(1, 2).reshape(batch, tokens, width)
        x = x + self.proj(mixed)
        return x + self.ff(self.norm2(x))


class PatchTransformer(nn.Module):
    """``[B, C, L]`` -> ``[B, d_model, L // patch]``: non-overlapping patches embedded by a
    strided ``Conv1d`` (``patch`` capped at ``L``), a learned position embedding, ``layers``
    encoder layers and a final ``LayerNorm``."""

    def __init__(
        self,
        channels: int,
        length: int,
        patch: int,
        layers: int,
        d_model: int,
        heads: int,
        ff: int,
    ) -> None:
        super().__init__()
        patch = max(1, min(patch, length))
        self.embed = nn.Conv1d(channels, d_model, patch, stride=patch)
        self.position = nn.Parameter(torch.randn(1, length // patch, d_model) * 0.02)
        self.layers = nn.Sequential(*[EncoderLayer(d_model, heads, ff) for _ in range(layers)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).transpose(1, 2) + self.position
        return self.norm(self.layers(tokens)).transpose(1, 2)
