"""torchvision's ``resnet18``, ``mobilenet_v2`` and ``efficientnet_b0`` (1000 classes), written
out layer for layer so that the counters can be checked against their published figures
without torchvision. Parameter counts equal torchvision's; module names do not follow it."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_act(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU,
    bn_eps: float = 1e-5,
) -> nn.Sequential:
    """Convolution without bias (padding keeps the size at stride 1), BatchNorm, activation
    (torchvision's ``Conv2dNormActivation``)."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=bn_eps),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


# --- ResNet-18 -----------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN (ReLU between and after the sum); a 1x1 conv-BN shortcut when the
    stride or width changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(c_in, c_out, 3, stride)
        self.conv2 = conv_bn_act(c_out, c_out, 3, activation=None)
        self.shortcut: nn.Module = (
            conv_bn_act(c_in, c_out, 1, stride, activation=None)
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def resnet18(num_classes: int = 1000) -> nn.Module:
    """ResNet-18 (He et al. 2016): 7x7 stem, max pooling, four stages of two basic blocks
    (64, 128, 256, 512 channels), global average pooling, linear classifier."""
    layers: list[nn.Module] = [
        conv_bn_act(3, 64, 7, 2),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ]
    c_in = 64
    for stage, c_out in enumerate((64, 128, 256, 512)):
        layers.append(BasicBlock(c_in, c_out, 1 if stage == 0 else 2))
        layers.append(BasicBlock(c_out, c_out, 1))
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


# --- MobileNetV2 ---------------------------------------------------------------------------------


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion (ReLU6; absent when ``expand`` is 1), 3x3 depthwise
    conv (ReLU6), 1x1 linear projection; a residual sum when shape is kept."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_act(c_in, hidden, 1, activation=nn.ReLU6))
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
            conv_bn_act(hidden, c_out, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


MOBILENET_V2_STAGES = [  # expansion t, channels c, blocks n, first stride s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    """MobileNetV2 (Sandler et al. 2018), width 1.0: 32-channel stem, the inverted residual
    stages above, a 1x1 conv to 1280 channels, global average pooling, dropout, classifier."""
    layers: list[nn.Module] = [conv_bn_act(3, 32, 3, 2, activation=nn.ReLU6)]
    c_in = 32
    for expand, c_out, blocks, stride in MOBILENET_V2_STAGES:
        for index in range(blocks):
            layers.append(InvertedResidual(c_in, c_out, stride if index == 0 else 1, expand))
            c_in = c_out
    layers += [
        conv_bn_act(c_in, 1280, 1, activation=nn.ReLU6),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(1280, num_classes),
    ]
    return nn.Sequential(*layers)


# --- EfficientNet-B0 -----------------------------------------------------------------------------


class SqueezeExcitation(nn.Module):
    """Global average pooling, 1x1 conv (with bias) to ``squeeze`` channels, SiLU, 1x1 conv back,
    sigmoid; the input scaled channel-wise by the result."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.activation = nn.SiLU()
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.activation(self.reduce(self.pool(x)))))
        return x * scale


class MBConv(nn.Module):
    """EfficientNet's block: 1x1 expansion (SiLU; absent when ``expand`` is 1), depthwise
    ``kernel`` conv (SiLU), squeeze-and-excitation to a quarter of the *input* channels, 1x1
    linear projection; a residual sum when shape is kept (stochastic depth is identity in
    eval mode and has no parameters, so it is left out)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        eps = 1e-3
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_act(c_in, hidden, 1, activation=nn.SiLU, bn_eps=eps))
        layers += [
            conv_bn_act(hidden, hidden, kernel, stride, hidden, activation=nn.SiLU, bn_eps=eps),
            SqueezeExcitation(hidden, max(1, c_in // 4)),
            conv_bn_act(hidden, c_out, 1, activation=None, bn_eps=eps),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


EFFICIENTNET_B0_STAGES = [  # expansion, kernel, first stride, input channels, output, blocks
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]


def efficientnet_b0(num_classes: int = 1000) -> nn.Module:
    """EfficientNet-B0 (Tan & Le 2019): 32-channel stem, the MBConv stages above, a 1x1 conv to
    1280 channels, global average pooling, dropout, classifier."""
    eps = 1e-3
    layers: list[nn.Module] = [conv_bn_act(3, 32, 3, 2, activation=nn.SiLU, bn_eps=eps)]
    for expand, kernel, stride, c_in, c_out, blocks in EFFICIENTNET_B0_STAGES:
        for index in range(blocks):
            first = index == 0
            layers.append(
                MBConv(c_in if first else c_out, c_out, kernel, stride if first else 1, expand)
            )
    layers += [
        conv_bn_act(320, 1280, 1, activation=nn.SiLU, bn_eps=eps),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(1280, num_classes),
    ]
    return nn.Sequential(*layers)
