"""``space=scaling``: EfficientNet-style compound model scaling of a fixed base network.

Decisions: ``depth``, ``width`` and ``resolution`` multipliers (``compound: false``), or one
compound coefficient ``phi`` giving ``depth = alpha**phi``, ``width = beta**phi``,
``resolution = gamma**phi`` (``compound: true``). The builder creates the base space with
``width_multiplier`` and ``depth_multiplier`` multiplied by the genome's (times any set in
``base_space_params``), builds the base genome, and puts an input-resizing first layer in
front for a resolution other than 1.0, so the job's data stays as it is. The base network:
``corenas.prebuilt.base_model``. Reference: docs/space-scaling.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.prebuilt.base_model import BaseModel, resolve_base_model
from corenas.space.base import SearchSpace

DEFAULT_DEPTHS = (1.0, 1.2, 1.4, 1.6)
DEFAULT_WIDTHS = (1.0, 1.1, 1.2, 1.4)
DEFAULT_RESOLUTIONS = (1.0, 1.15, 1.3)
DEFAULT_PHIS = (0, 1, 2, 3)
EFFICIENTNET_ALPHA, EFFICIENTNET_BETA, EFFICIENTNET_GAMMA = 1.2, 1.1, 1.15
"""EfficientNet's compound coefficients (Tan & Le, 2019): alpha * beta^2 * gamma^2 ~ 2."""

WHERE = "space 'scaling'"
_FACTORY_PARAMETER = {"depth": "depth_multiplier", "width": "width_multiplier"}
_COEFFICIENT = {"depth": "alpha", "width": "beta", "resolution": "gamma"}


def make_scaling_space(
    data_info: DataInfo | None = None,
    base_space: str | None = None,
    base_space_params: Mapping[str, Any] | None = None,
    base_job: str | None = None,
    base_genome: str | None = None,
    base_genome_values: Mapping[str, Any] | None = None,
    depths: list[float] | None = None,
    widths: list[float] | None = None,
    resolutions: list[float] | None = None,
    compound: bool = False,
    phis: list[float] | None = None,
    alpha: float = EFFICIENTNET_ALPHA,
    beta: float = EFFICIENTNET_BETA,
    gamma: float = EFFICIENTNET_GAMMA,
) -> SearchSpace:
    """The scaling space of the base network the ``base_*`` parameters name (see
    ``resolve_base_model``). Lists left None default to EfficientNet's grid for each
    multiplier the base supports and to ``[1.0]`` for the others (the base space's factory
    takes no ``depth_multiplier`` / ``width_multiplier``, or its network fails on resized
    inputs); a list or coefficient that scales an unsupported multiplier raises
    ``ConfigError`` naming the base space."""
    from corenas.space import Space

    base = resolve_base_model(
        WHERE, base_space, base_space_params, base_job, base_genome, base_genome_values, data_info
    )
    if not isinstance(compound, bool):
        raise ConfigError(f"{WHERE}: space.compound must be true or false, got {compound!r}")
    probe = ResolutionProbe(base)
    decisions: dict[str, Any]
    if compound:
        for name, value in (("depths", depths), ("widths", widths), ("resolutions", resolutions)):
            if value is not None:
                raise ConfigError(
                    f"{WHERE}: space.{name} goes with compound=false; with compound=true "
                    "set space.phis and space.alpha/beta/gamma"
                )
        coefficients = {
            "depth": _positive(alpha, "alpha"),
            "width": _positive(beta, "beta"),
            "resolution": _positive(gamma, "gamma"),
        }
        phi_values = _numbers(DEFAULT_PHIS if phis is None else phis, "phis", minimum=None)
        for multiplier, coefficient in coefficients.items():
            scaled = [coefficient**phi for phi in phi_values]
            _check_supported(base, probe, multiplier, scaled, _COEFFICIENT[multiplier])
        decisions = {"phi": _choice(phi_values)}
        builder = ScalingBuilder(base, compound=coefficients)
    else:
        chosen: dict[str, list[float]] = {}
        for multiplier, given, default in (
            ("depth", depths, DEFAULT_DEPTHS),
            ("width", widths, DEFAULT_WIDTHS),
            ("resolution", resolutions, DEFAULT_RESOLUTIONS),
        ):
            param = f"{multiplier}s"
            if given is None:
                values = list(default)
                if _unsupported(base, probe, multiplier, values) is not None:
                    values = [1.0]
            else:
                values = _numbers(given, param, minimum=0.0)
                _check_supported(base, probe, multiplier, values, param)
            chosen[multiplier] = values
        decisions = {name: _choice(values) for name, values in chosen.items()}
        builder = ScalingBuilder(base, compound=None)
    return Space(
        name="scaling", decisions=decisions, builder=builder, input_shape=probe.input_shape
    )


class ScalingBuilder:
    """Builds a materialised scaling architecture: the base genome scaled by its
    multipliers (``multipliers``)."""

    def __init__(self, base: BaseModel, compound: dict[str, float] | None) -> None:
        self.base = base
        self.compound = compound

    def multipliers(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """``{"depth": d, "width": w, "resolution": r}`` of an architecture."""
        if self.compound is not None:
            phi = float(arch["phi"])
            return {name: coefficient**phi for name, coefficient in self.compound.items()}
        return {name: float(arch[name]) for name in ("depth", "width", "resolution")}

    def __call__(self, arch: dict[str, Any]) -> Any:
        from corenas.prebuilt.scaling_model import with_resolution

        scale = self.multipliers(arch)
        return with_resolution(
            self.base.build(**_factory_overrides(self.base, scale)), scale["resolution"]
        )


class ResolutionProbe:
    """Whether the base network runs on resized inputs, checked once per multiplier with one
    zero input of the base space's (else the data's) input shape."""

    def __init__(self, base: BaseModel) -> None:
        self.base = base
        space = base.make_space()
        info_shape = base.data_info.input_shape if base.data_info is not None else None
        self.input_shape: tuple[int, ...] | None = space.input_shape or info_shape
        self._problems: dict[float, str | None] = {}
        self._model: Any = None

    def problem(self, multiplier: float) -> str | None:
        """Why the base network fails at ``multiplier``, or None (also when no input shape
        is known: the job then finds out)."""
        if multiplier == 1.0 or self.input_shape is None:
            return None
        if multiplier not in self._problems:
            from corenas.prebuilt.scaling_model import resize_problem

            if self._model is None:
                self._model = self.base.build()
            self._problems[multiplier] = resize_problem(self._model, self.input_shape, multiplier)
        return self._problems[multiplier]


def _factory_overrides(base: BaseModel, scale: Mapping[str, float]) -> dict[str, float]:
    """The base factory's multiplier parameters for ``scale``, times those the base
    parameters set; a multiplier of 1.0 leaves its parameter as the base sets it."""
    overrides = {}
    for multiplier, parameter in _FACTORY_PARAMETER.items():
        if scale[multiplier] != 1.0:
            own = float(base.space_params.get(parameter, 1.0))
            overrides[parameter] = own * scale[multiplier]
    return overrides


def _unsupported(
    base: BaseModel, probe: ResolutionProbe, multiplier: str, values: list[float]
) -> str | None:
    """Why ``values`` of ``multiplier`` cannot scale the base (None: they can)."""
    scaled = [v for v in values if v != 1.0]
    if not scaled:
        return None
    if multiplier in _FACTORY_PARAMETER:
        parameter = _FACTORY_PARAMETER[multiplier]
        if not base.takes(parameter):
            return f"its factory takes no {parameter}"
        return None
    for value in scaled:
        problem = probe.problem(value)
        if problem is not None:
            shape = "x".join(str(s) for s in probe.input_shape or ())
            return f"its network fails on {shape} inputs resized by {value:g}: {problem}"
    return None


def _check_supported(
    base: BaseModel, probe: ResolutionProbe, multiplier: str, values: list[float], param: str
) -> None:
    problem = _unsupported(base, probe, multiplier, values)
    if problem is not None:
        fix = f"space.{param}=1.0" if param in _COEFFICIENT.values() else f"space.{param}=[1.0]"
        raise ConfigError(
            f"{WHERE}: base space '{base.space_name}' cannot scale {multiplier} ({problem}); "
            f"set {fix} or choose a base space that scales it"
        )


def _positive(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{WHERE}: space.{param} must be a number above 0, got {value!r}")
    return float(value)


def _numbers(values: Any, param: str, minimum: float | None) -> list[float]:
    """A non-empty list of distinct numbers (each above ``minimum`` when given)."""
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{WHERE}: space.{param} must be a list of numbers, got {values!r}")
    out = list(values)
    for value in out:
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
        if bad or not math.isfinite(value) or (minimum is not None and not value > minimum):
            rule = "numbers above 0" if minimum is not None else "finite numbers"
            raise ConfigError(f"{WHERE}: space.{param} must hold {rule}, got {value!r}")
    if not out:
        raise ConfigError(f"{WHERE}: space.{param} is empty; give at least one value")
    if len(set(out)) != len(out):
        raise ConfigError(f"{WHERE}: space.{param} repeats a value: {out!r}")
    return [float(v) if minimum is not None else v for v in out]


def _choice(values: list[Any]) -> Any:
    """A ``Choice`` of ``values``, or a ``Fixed`` one when there is a single value."""
    from corenas.space import Choice, Fixed

    return Fixed(values[0]) if len(values) == 1 else Choice(values)
