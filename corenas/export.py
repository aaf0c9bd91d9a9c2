"""Exporting a job's trials as model files with their genome and metrics, and rebuilding them.

``export_trials`` writes, per chosen trial, a folder ``OUT/trial-<id>/`` holding
``architecture.json`` (space, genome, metrics, reward, weight provenance, input shape) and the
model in one format; ``load_architecture`` turns such a folder back into the ``torch.nn.Module``.
torch is imported only when a model is built; nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corenas import __version__
from corenas.data.base import DataInfo
from corenas.engine import best_trials
from corenas.errors import ConfigError, StoreError
from corenas.hardware.counting import error_summary
from corenas.jobdir import open_job_store, write_atomically
from corenas.plugins import get_plugins
from corenas.records import TRAIN_STAGE, Genome, Trial, TrialStatus, trial_seed
from corenas.space.base import SearchSpace
from corenas.store.base import Store
from corenas.trainer.lightning import CHECKPOINT_FILE
from corenas.trial import ComponentSpec, create_space, seed_everything

FORMATS = ("onnx", "torchscript", "state_dict", "json")
"""What ``export_trials`` can write beside ``architecture.json``."""

ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "weights.pt"
"""The model's state dict (tensors only): written by every format but ``json``."""
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}
DEFAULT_OUT = "export"
"""Where the trial folders go, inside the job directory, unless told otherwise."""
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
RECORD_VERSION = 1
"""Version of the ``architecture.json`` layout."""

TRAINED, INITIALISED, NO_WEIGHTS = "trained", "initialised", "none"
"""Where the exported weights come from: the trial's training checkpoint, a fresh seeded
initialisation (the weights the trial started from), or nowhere (``json``: no model file)."""
FINISHED = (TrialStatus.SUCCEEDED, TrialStatus.STOPPED)
"""Trials whose checkpoint holds the weights their training ended with."""


@dataclass(frozen=True)
class ExportedTrial:
    """One exported trial: its folder, the files in it, where its weights come from, and the
    search trial it retrains when ``--top`` picked it in that trial's place."""

    trial: Trial
    directory: Path
    files: list[str]
    weights: str
    ranked_as: int | None = None


@dataclass(frozen=True)
class ModelRecipe:
    """What rebuilding any architecture of a job takes: its space, the data that sized it and
    the plugins the job blocks."""

    space: ComponentSpec
    data_info: DataInfo | None
    blocked_plugins: list[str]

    def create_space(self) -> SearchSpace:
        """The job's search space, sized to ``data_info`` when its factory takes it."""
        return create_space(get_plugins(self.blocked_plugins), self.space, self.data_info)


def check_format(fmt: str) -> None:
    """``ConfigError`` unless ``fmt`` is one of ``FORMATS``."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")


def choose_trials(
    store: Store, job_dir: Path, trial_id: int | None, top: int | None
) -> list[tuple[Trial, int]]:
    """``(trial to export, trial it was chosen as)`` pairs: ``trial_id``'s trial itself, or the
    ``top`` best search trials by reward (as ``corenas best`` ranks them), each replaced by its
    newest succeeded stage-2 retraining when it has one. ``ConfigError`` for an unknown id or a
    job without a succeeded trial."""
    if trial_id is not None and top is not None:
        raise ConfigError("--trial and --top exclude each other; give one of them")
    if trial_id is None and top is None:
        raise ConfigError("say which trials to export: --trial ID or --top N")
    if trial_id is not None:
        try:
            trial = store.trial(trial_id)
        except StoreError:
            raise ConfigError(
                f"job '{job_dir}' has no trial {trial_id}; see `corenas trials list {job_dir}`"
            ) from None
        return [(trial, trial.id)]
    assert top is not None
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    ranked = best_trials(store, top)
    if not ranked:
        raise ConfigError("the job has no succeeded search trial with a reward to export yet")
    retrainings: dict[int, Trial] = {}
    for trial in store.trials(TrialStatus.SUCCEEDED):  # in id order: the newest wins
        if trial.stage == TRAIN_STAGE and trial.parent_id is not None:
            retrainings[trial.parent_id] = trial
    return [(retrainings.get(t.id, t), t.id) for t in ranked]


def recipe_of(config: dict[str, Any]) -> ModelRecipe:
    """The ``ModelRecipe`` of a job's stored configuration; its dataset is asked for its
    ``info`` only (never loaded) when the job has one."""
    blocked = list((config.get("plugins") or {}).get("block") or [])
    data_info: DataInfo | None = None
    data = dict(config.get("data") or {"name": "none"})
    if data.get("name", "none") != "none":
        spec = ComponentSpec.from_config(data)
        data_info = get_plugins(blocked).registry("data").create(spec.name, **spec.params).info()
    return ModelRecipe(ComponentSpec.from_config(dict(config["space"])), data_info, blocked)


def input_shape_of(
    config: dict[str, Any], space: SearchSpace, data_info: DataInfo | None
) -> tuple[int, ...] | None:
    """One model input without the batch, as the job's hardware backend measured it: the
    job's ``hardware.input_shape``, else the space's, else the data's; None when none says."""
    shape = (
        (config.get("hardware") or {}).get("input_shape")
        or space.input_shape
        or (data_info.input_shape if data_info else None)
    )
    return tuple(int(s) for s in shape) if shape else None


def seed_of(config: dict[str, Any], trial: Trial) -> int:
    """The seed the search driver gave ``trial`` (its initial weights come from it)."""
    return trial_seed(int(config.get("seed", 0)), trial.id)


def build_model(space: SearchSpace, genome: Genome, seed: int) -> Any:
    """The ``torch.nn.Module`` of ``genome``, its weights initialised from ``seed`` exactly as
    the trial's were; ``ConfigError`` when the space builds something else."""
    import torch

    seed_everything(seed)
    model = space.build(genome)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"space '{getattr(space, 'name', '?')}' builds {type(model).__name__}, not a torch "
            "module; only --format json exports its architectures"
        )
    return model


def checkpoint_weights(path: Path, trial_id: int) -> dict[str, Any]:
    """The model's tensors in trial ``trial_id``'s Lightning checkpoint ``path`` (loaded with
    ``weights_only=True``, the ``model.`` prefix of the training module stripped)."""
    import torch

    prefix = "model."
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"cannot read the checkpoint {path} of trial {trial_id} ({error_summary(exc)})"
        ) from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"the checkpoint {path} of trial {trial_id} holds no state_dict")
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def load_weights(model: Any, weights: dict[str, Any], where: str) -> None:
    """Load ``weights`` into ``model`` strictly; ``ConfigError`` naming ``where`` on a mismatch."""
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        summary = " ".join(str(exc).split())[:300]
        raise ConfigError(
            f"the weights of {where} do not fit its architecture: {summary}"
        ) from None


def trial_model(job_dir: Path, space: SearchSpace, trial: Trial, seed: int) -> tuple[Any, str]:
    """``(module in eval mode, weights provenance)`` of ``trial``: its finished training's
    checkpoint when the job kept one, else its seeded initial weights."""
    model = build_model(space, trial.genome, seed)
    checkpoint = job_dir / "trials" / str(trial.id) / CHECKPOINT_FILE
    weights = INITIALISED
    if trial.status in FINISHED and checkpoint.is_file():
        load_weights(model, checkpoint_weights(checkpoint, trial.id), f"trial {trial.id}")
        weights = TRAINED
    return model.eval(), weights


def save_state_dict(model: Any, path: Path) -> None:
    """``torch.save`` of the model's tensors only (loadable with ``weights_only=True``)."""
    import torch

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(tensors, path)


def example_input(shape: tuple[int, ...]) -> Any:
    """A seeded standard-normal batch of one ``[1, *shape]`` float32 input."""
    import torch

    return torch.randn((1, *shape), generator=torch.Generator().manual_seed(0))


def save_onnx(model: Any, example: Any, path: Path, trial_id: int) -> None:
    """``model`` as ONNX (opset ``ONNX_OPSET``, torch's TorchScript-based exporter) with one
    input ``input`` and output ``output``, both with a dynamic batch axis."""
    import torch

    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
    except Exception as exc:
        raise ConfigError(
            f"exporting trial {trial_id} to ONNX failed ({error_summary(exc)}); try --format "
            "torchscript or state_dict"
        ) from None


def save_torchscript(model: Any, example: Any, path: Path, trial_id: int) -> None:
    """``model`` traced on ``example`` and saved as a TorchScript archive."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, example, check_trace=False, strict=False)
            torch.jit.save(traced, str(path))
    except Exception as exc:
        raise ConfigError(
            f"exporting trial {trial_id} to TorchScript failed ({error_summary(exc)}); try "
            "--format onnx or state_dict"
        ) from None


@dataclass(frozen=True)
class JobExport:
    """One export run over a job: its directory and stored config, the re-created space, the
    model input and the format."""

    job_dir: Path
    config: dict[str, Any]
    recipe: ModelRecipe
    space: SearchSpace
    input_shape: tuple[int, ...] | None
    fmt: str

    @classmethod
    def of(cls, job_dir: Path, config: dict[str, Any], fmt: str) -> JobExport:
        """The export of the job ``config`` as ``fmt``; ``ConfigError`` when ``fmt`` cannot
        be written for it (unknown, no input shape to trace, no ``onnx`` package)."""
        check_format(fmt)
        recipe = recipe_of(config)
        space = recipe.create_space()
        input_shape = input_shape_of(config, space, recipe.data_info)
        if fmt in MODEL_FILES and input_shape is None:
            raise ConfigError(
                f"--format {fmt} needs the model's input shape, but space '{recipe.space.name}' "
                "declares none and the job sets neither hardware.input_shape nor data; use "
                "--format state_dict or json"
            )
        if fmt == "onnx":
            import importlib.util

            if importlib.util.find_spec("onnx") is None:
                raise ConfigError(
                    "--format onnx needs the onnx package: pip install 'corenas[onnx]' (or "
                    "choose --format torchscript)"
                )
        return cls(job_dir, config, recipe, space, input_shape, fmt)

    def write_trial(self, trial: Trial, directory: Path) -> tuple[list[str], str]:
        """Write ``trial``'s files into the new folder ``directory``; ``(file names, weights
        provenance)``."""
        directory.mkdir()
        files: list[str] = []
        weights = NO_WEIGHTS
        if self.fmt != "json":
            model, weights = trial_model(
                self.job_dir, self.space, trial, seed_of(self.config, trial)
            )
            if self.fmt in MODEL_FILES:
                assert self.input_shape is not None  # checked by ``of``
                save = save_onnx if self.fmt == "onnx" else save_torchscript
                name = MODEL_FILES[self.fmt]
                save(model, example_input(self.input_shape), directory / name, trial.id)
                files.append(name)
            save_state_dict(model, directory / WEIGHTS_FILE)
            files.append(WEIGHTS_FILE)
        record = self.record(trial, files, weights)
        write_atomically(directory / ARCHITECTURE_FILE, json.dumps(record, indent=2) + "\n")
        return [ARCHITECTURE_FILE, *files], weights

    def record(self, trial: Trial, files: list[str], weights: str) -> dict[str, Any]:
        """The content of ``architecture.json``: everything ``load_architecture`` needs, plus
        the trial's metrics and reward."""
        data_info = self.recipe.data_info
        record: dict[str, Any] = {
            "record_version": RECORD_VERSION,
            "corenas_version": __version__,
            "format": self.fmt,
            "files": files,
            "weights": weights,
            "job_dir": str(self.job_dir.absolute()),
            "trial": {
                "id": trial.id,
                "stage": trial.stage,
                "parent_id": trial.parent_id,
                "status": trial.status.value,
                "arch_id": trial.arch_id,
                "seed": seed_of(self.config, trial),
            },
            "space": {"name": self.recipe.space.name, "params": self.recipe.space.params},
            "data_info": data_info.to_json() if data_info else None,
            "blocked_plugins": self.recipe.blocked_plugins,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "genome": trial.genome,
            "metrics": trial.metrics,
            "reward": trial.reward,
        }
        if self.fmt == "onnx":
            record["onnx"] = {"opset": ONNX_OPSET, "input": INPUT_NAME, "output": OUTPUT_NAME}
        return record


def export_trials(
    job_dir: Path,
    fmt: str,
    trial_id: int | None = None,
    top: int | None = None,
    out: Path | None = None,
) -> list[ExportedTrial]:
    """Export trial ``trial_id``, or the ``top`` best (see ``choose_trials``), of the job in
    ``job_dir`` as ``fmt`` into ``out/trial-<id>/`` (default ``job_dir/export``), replacing an
    earlier export of the same trial. All or nothing: every folder is written aside first and
    moved into place only when all are complete; on ``ConfigError`` nothing is left behind."""
    check_format(fmt)
    store = open_job_store(job_dir, get_plugins())
    try:
        job = store.job()
        assert job is not None
        chosen = choose_trials(store, job_dir, trial_id, top)
    finally:
        store.close()
    export = JobExport.of(job_dir, job.config, fmt)
    out = out if out is not None else job_dir / DEFAULT_OUT
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; give a directory")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    except OSError as exc:
        raise ConfigError(f"cannot write to '{out}': {exc.strerror or exc}") from None
    done = False
    try:
        exported: list[ExportedTrial] = []
        for trial, ranked_as in chosen:
            folder = f"trial-{trial.id}"
            files, weights = export.write_trial(trial, staging / folder)
            substitute = ranked_as if ranked_as != trial.id else None
            exported.append(ExportedTrial(trial, out / folder, files, weights, substitute))
        for item in exported:
            if item.directory.exists():
                os.replace(item.directory, staging / f"old-{item.directory.name}")
            os.replace(staging / item.directory.name, item.directory)
        done = True
        return exported
    except OSError as exc:
        raise ConfigError(f"cannot write to '{out}': {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            with contextlib.suppress(OSError):
                out.rmdir()


def read_record(path: Path) -> tuple[dict[str, Any], Path]:
    """``(architecture.json content, export folder)`` of an export folder or its
    ``architecture.json``; ``ConfigError`` when it is missing or malformed."""
    file = path / ARCHITECTURE_FILE if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(
            f"'{path}' is not a corenas export (no {ARCHITECTURE_FILE}); give a trial folder "
            "written by `corenas export`"
        )
    try:
        record = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from None
    required = ("space", "genome", "trial")
    if not isinstance(record, dict) or any(key not in record for key in required):
        raise ConfigError(f"{file} is not an architecture record of `corenas export`")
    return record, file.parent


def load_architecture(path: str | os.PathLike[str]) -> Any:
    """The ``torch.nn.Module`` of an exported trial, in eval mode.

    ``path`` is a trial folder written by ``corenas export`` or its ``architecture.json``. The
    space is re-created from the stored name and parameters (sized by the stored data info),
    the module built from the genome, and the folder's ``weights.pt`` loaded when present;
    without it (``--format json``) the module has the trial's seeded initial weights. Raises
    ``ConfigError`` for a missing or malformed export, a space that is not installed, or
    weights that do not fit.
    """
    import torch

    record, folder = read_record(Path(path))
    info = record.get("data_info")
    data_info = None
    if info is not None:
        data_info = DataInfo(info["task"], tuple(info["input_shape"]), int(info["num_outputs"]))
    space = ComponentSpec(str(record["space"]["name"]), dict(record["space"].get("params") or {}))
    recipe = ModelRecipe(space, data_info, list(record.get("blocked_plugins") or []))
    model = build_model(recipe.create_space(), record["genome"], int(record["trial"]["seed"]))
    weights_file = folder / WEIGHTS_FILE
    if weights_file.is_file():
        try:
            weights = torch.load(weights_file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(f"cannot read {weights_file} ({error_summary(exc)})") from None
        if not isinstance(weights, dict):
            raise ConfigError(f"{weights_file} does not hold a state dict")
        load_weights(model, weights, f"trial {record['trial']['id']}")
    return model.eval()
