"""MACs and ops counting: reference ImageNet models against their published figures, and
hand-computed counts of convolutions (grouped, depthwise), linear layers, matmuls, attention
and the element-wise operations of ``ops``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hardware.reference_models import efficientnet_b0, mobilenet_v2, resnet18
from torch import nn

from corenas.errors import TrialError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.analytic import count_macs as analytic_count_macs
from corenas.hardware.base import InputSpec
from corenas.hardware.counting import count_cost, count_macs, count_ops

IMAGENET = InputSpec((3, 224, 224))

PUBLISHED = [  # torchvision's model cards: parameters, GMACs ("GFLOPS") at 224x224, batch 1
    (mobilenet_v2, 3_504_872, 300.77e6),
    (efficientnet_b0, 5_288_548, 385.81e6),
    (resnet18, 11_689_512, 1_814.07e6),
]


@pytest.mark.parametrize(
    ("build", "params", "macs"), PUBLISHED, ids=[build.__name__ for build, _, _ in PUBLISHED]
)
def test_reference_models_match_published_params_and_macs(
    build: Callable[[], nn.Module], params: int, macs: float
) -> None:
    measured = AnalyticBackend().measure(build(), IMAGENET)
    assert measured.params == pytest.approx(params, rel=0.01)
    assert measured.macs == pytest.approx(macs, rel=0.01)
    assert measured.params == params  # the architectures are torchvision's, layer for layer
    assert measured.ops is not None and measured.macs is not None
    assert measured.ops > measured.macs


# --- hand-computed MACs --------------------------------------------------------------------------


def test_depthwise_grouped_and_dense_convolutions() -> None:
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    # 8 x 10 x 10 outputs, each 1 input channel x 3 x 3
    assert count_macs(depthwise, InputSpec((8, 10, 10))) == 8 * 10 * 10 * 9
    grouped = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4, bias=False)
    # 16 x 5 x 5 outputs, each 8 / 4 = 2 input channels x 3 x 3
    assert count_macs(grouped, InputSpec((8, 10, 10))) == 16 * 5 * 5 * 2 * 9
    dense = nn.Conv2d(8, 16, 3, stride=2, padding=1)
    assert count_macs(dense, InputSpec((8, 10, 10), batch_size=3)) == 3 * 16 * 5 * 5 * 8 * 9


def test_linear_and_matmul() -> None:
    assert count_macs(nn.Linear(20, 30), InputSpec((20,), batch_size=3)) == 3 * 20 * 30

    class Project(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(6, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 5, 6] @ [6, 4], then x^T x
            y = torch.matmul(x, self.weight)
            return torch.bmm(y.transpose(1, 2), y)

    assert count_macs(Project(), InputSpec((5, 6), batch_size=2)) == 2 * (5 * 6 * 4 + 4 * 5 * 4)


class Attention(nn.Module):
    """``scaled_dot_product_attention`` of [B, H, L, D] queries on the first S positions."""

    def __init__(self, keys: int) -> None:
        super().__init__()
        self.keys = keys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory = x[:, :, : self.keys]
        return F.scaled_dot_product_attention(x, memory, memory)


def test_scaled_dot_product_attention() -> None:
    # q k^T: B x H x L x S x D, then (q k^T) v: B x H x L x S x D
    batch, heads, length, keys, dim = 2, 3, 10, 7, 8
    spec = InputSpec((heads, length, dim), batch_size=batch)
    assert count_macs(Attention(keys), spec) == 2 * batch * heads * length * keys * dim


class SelfAttention(nn.Module):
    def __init__(self, embed: int, heads: int, need_weights: bool) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(embed, heads, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=self.need_weights)[0]


@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention(need_weights: bool) -> None:
    batch, length, embed = 2, 10, 16
    # q, k, v projections 3 L E^2; q k^T and weights x v 2 L^2 E (over all heads); output L E^2
    expected = batch * (3 * length * embed**2 + 2 * length**2 * embed + length * embed**2)
    model = SelfAttention(embed, 4, need_weights)
    assert count_macs(model, InputSpec((length, embed), batch_size=batch)) == expected
    assert torch.backends.mha.get_fastpath_enabled()  # the counter's switch is undone


def test_transformer_encoder_layer_in_eval_mode() -> None:
    """Its fused inference kernel is invisible to torch's counter; counted unfused."""
    length, embed, hidden = 10, 16, 32
    layer = nn.TransformerEncoderLayer(embed, 4, hidden, dropout=0.0, batch_first=True)
    attention = 4 * length * embed**2 + 2 * length**2 * embed
    feed_forward = 2 * length * embed * hidden
    assert count_macs(layer, InputSpec((length, embed))) == attention + feed_forward
    assert layer.training  # mode restored


# --- hand-computed ops ---------------------------------------------------------------------------


def test_ops_add_normalisation_activation_and_pooling() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),  # 4 x 8 x 8 outputs x 27 MACs
        nn.BatchNorm2d(4),  # 256 outputs x 2 (affine)
        nn.ReLU(),  # 256
        nn.AvgPool2d(3, stride=1, padding=1),  # 256 outputs x 3 x 3
        nn.MaxPool2d(2),  # 4 x 4 x 4 outputs x 2 x 2
        nn.BatchNorm2d(4, affine=False),  # 64 x 1
        nn.ReLU6(inplace=True),  # 64
        nn.AdaptiveAvgPool2d(1),  # 64 inputs
        nn.Flatten(),
        nn.Linear(4, 5),  # 20 MACs
    )
    macs = 4 * 8 * 8 * 27 + 4 * 5
    elementwise = 256 * 2 + 256 + 256 * 9 + 64 * 4 + 64 + 64 + 64
    cost = count_cost(model, InputSpec((3, 8, 8)))
    assert (cost.macs, cost.ops) == (macs, macs + elementwise)
    assert count_ops(model, InputSpec((3, 8, 8), batch_size=2)) == 2 * (macs + elementwise)


def test_ops_of_other_activations_and_layer_norm() -> None:
    model = nn.Sequential(
        nn.LayerNorm(6),  # 2 per element
        nn.GELU(),
        nn.SiLU(),
        nn.Sigmoid(),
        nn.Tanh(),
        nn.Hardswish(),
        nn.LeakyReLU(),
        nn.Dropout(0.5),  # identity in eval mode: 0
    )
    elements = 5 * 6
    cost = count_cost(model, InputSpec((5, 6)))
    assert (cost.macs, cost.ops) == (0, elements * 2 + elements * 6)


def test_additions_and_constant_products_count_nothing() -> None:
    class Arithmetic(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x + x) * 3.0 - x.mul(0.0)

    cost = count_cost(Arithmetic(), InputSpec((4, 4)))
    assert (cost.macs, cost.ops) == (0, 0)


def test_analytic_reexports_count_macs_and_reports_ops() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    spec = InputSpec((1, 5, 5))
    assert analytic_count_macs is count_macs
    measured = AnalyticBackend().measure(model, spec)
    assert (measured.macs, measured.ops) == (2 * 3 * 3 * 9, 2 * 3 * 3 * 9 + 2 * 3 * 3)
    assert measured.as_metrics()["ops"] == measured.ops
    assert measured.as_metrics()["flops"] == 2 * 2 * 3 * 3 * 9
    assert model.training


def test_unknown_input_dtype_fails_the_trial_with_one_line() -> None:
    with pytest.raises(TrialError, match=r"^hardware: unknown input dtype 'float99'$"):
        AnalyticBackend().measure(nn.Linear(2, 2), InputSpec((2,), dtype="float99"))
