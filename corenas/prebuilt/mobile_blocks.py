"""Torch blocks of the 7-block mobile spaces (``mnasnet``, ``efficientnet_v2``): conv-BN-act,
squeeze-and-excitation, MBConv, fused MBConv, and the network of a ``NetworkPlan``.

Imported only by the spaces' builder, so the spaces and the CLI stay torch-free until a model
is built. Every multiplication is a convolution or a linear layer, so the ``analytic``
hardware backend (torch's flop counter) counts the models' MACs exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from corenas.prebuilt.mobile_space import CLASSIFIER_DROPOUT, LayerPlan, NetworkPlan

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU}


class ConvBNAct(nn.Sequential):
    """Convolution without bias (padded to keep the size at stride 1), BatchNorm, and the
    activation unless ``activation`` is None."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        activation: type[nn.Module] | None,
        bn_eps: float,
        groups: int = 1,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, eps=bn_eps),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Global average pooling, 1x1 conv (with bias) to ``squeeze`` channels, activation, 1x1
    conv back, sigmoid; the input scaled channel-wise by the result."""

    def __init__(self, channels: int, squeeze: int, activation: type[nn.Module]) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.activation = activation()
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.activation(self.reduce(self.pool(x)))))


class MobileLayer(nn.Module):
    """One layer of a block, per ``LayerPlan``: ``mbconv`` is 1x1 expansion (left out at
    expand ratio 1), depthwise conv, SE, linear 1x1 projection; ``fused`` is a full conv
    expansion, SE, linear 1x1 projection, or at expand ratio 1 one full conv with its
    activation, then SE. A residual sum when the stride is 1 and the width is kept."""

    def __init__(self, plan: LayerPlan, activation: type[nn.Module], bn_eps: float) -> None:
        super().__init__()
        c_in, c_out, kernel = plan.in_channels, plan.out_channels, plan.kernel_size
        hidden = c_in * plan.expand_ratio
        layers: list[nn.Module] = []
        if plan.kind == "mbconv":
            if plan.expand_ratio != 1:
                layers.append(ConvBNAct(c_in, hidden, 1, 1, activation, bn_eps))
            layers.append(
                ConvBNAct(hidden, hidden, kernel, plan.stride, activation, bn_eps, groups=hidden)
            )
        elif plan.kind == "fused":
            if plan.expand_ratio == 1:
                hidden = c_out
            layers.append(ConvBNAct(c_in, hidden, kernel, plan.stride, activation, bn_eps))
        else:
            raise ValueError(f"unknown layer kind {plan.kind!r}; expected 'mbconv' or 'fused'")
        if plan.se_channels:
            layers.append(SqueezeExcite(hidden, plan.se_channels, activation))
        if plan.kind == "mbconv" or plan.expand_ratio != 1:
            layers.append(ConvBNAct(hidden, c_out, 1, 1, None, bn_eps))
        self.body = nn.Sequential(*layers)
        self.residual = plan.stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def build_network(plan: NetworkPlan) -> nn.Sequential:
    """The model of ``plan``: stem, every layer, then 1x1 conv head, global average pooling,
    dropout and a linear classifier; ``[B, C, H, W]`` -> ``[B, num_classes]`` logits."""
    activation = ACTIVATIONS[plan.activation]
    eps = plan.bn_eps
    layers: list[nn.Module] = [
        ConvBNAct(plan.in_channels, plan.stem_channels, 3, plan.stem_stride, activation, eps)
    ]
    layers += [MobileLayer(layer, activation, eps) for layer in plan.layers]
    last = plan.layers[-1].out_channels if plan.layers else plan.stem_channels
    layers += [
        ConvBNAct(last, plan.head_channels, 1, 1, activation, eps),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(CLASSIFIER_DROPOUT),
        nn.Linear(plan.head_channels, plan.num_classes),
    ]
    return nn.Sequential(*layers)
