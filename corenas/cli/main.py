"""The ``corenas`` command line. Heavy modules (torch, hydra) load only inside subcommands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "search": ("corenas.cli.search_cmd", "run a new search (Hydra overrides; -m for multirun)"),
    "resume": ("corenas.cli.search_cmd", "continue a stopped or crashed search"),
    "train": (
        "corenas.cli.search_cmd",
        "stage 2: retrain the best architectures of a search with the full budget",
    ),
    "status": (
        "corenas.cli.jobs_cmd",
        "a job's progress, running trials, failures and best trial so far",
    ),
    "stop": (
        "corenas.cli.jobs_cmd",
        "stop a running job: no new trials, running ones finish (--now: requeued at once)",
    ),
    "trials": ("corenas.cli.jobs_cmd", "list or show trials of a job"),
    "best": ("corenas.cli.jobs_cmd", "the best trials of a job by reward, or its Pareto front"),
    "plot": (
        "corenas.cli.plot_cmd",
        "PNGs of a job: reward curve, metric scatter with Pareto front, top-k decision values",
    ),
    "dashboard": (
        "corenas.cli.dashboard_cmd",
        "a local, read-only web view of jobs: trial table, reward curve, Pareto scatter, trials",
    ),
    "export": (
        "corenas.cli.export_cmd",
        "write trials of a job as loadable models (ONNX, TorchScript, state dict) with genomes",
    ),
    "space": ("corenas.cli.space_cmd", "show, sample, validate or check a search space"),
    "proxy": (
        "corenas.cli.proxy_cmd",
        "design the proxy task: correlation candidates, proxy search by rank correlation, variance",
    ),
    "estimate": ("corenas.cli.estimate_cmd", "runtime, GPU quota, GPU-hours and cost of a search"),
    "plugins": ("corenas.cli.plugins_cmd", "list plugins and what each registers"),
    "measure": (
        "corenas.cli.measure_cmd",
        "hardware metrics (params, MACs, latency, ...) of architectures, without a search",
    ),
    "benchmark": (
        "corenas.cli.benchmark_cmd",
        "compare controllers on a tabular benchmark (seeds x budgets, in-process)",
    ),
    "latency-server": (
        "corenas.cli.latency_server_cmd",
        "measure models sent by hardware=remote searches on this machine (HTTP, token)",
    ),
    "hardware": (
        "corenas.cli.hardware_cmd",
        "profile a space's layers into a latency table (hardware=lut), or show a table",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corenas",
        description="corenas: self-hosted, plugin-based neural architecture search.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        command = _debug(sub.add_parser(name, help=help_text, description=help_text))
        add_arguments = getattr(_ArgSpecs, name.replace("-", "_"))
        add_arguments(command)
    return parser


def _debug(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors"
    )
    return p


def _config_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="also read config groups from DIR (e.g. DIR/space/my.yaml); repeatable",
    )


class _ArgSpecs:
    """Arguments of each subcommand (kept here so --help imports no subcommand module)."""

    @staticmethod
    def search(p: argparse.ArgumentParser) -> None:
        p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. controller=grid seed=1")
        p.add_argument("-m", "--multirun", action="store_true", help="sweep: a=1,2 b=x,y")
        p.add_argument(
            "--show-config", action="store_true", help="print the composed config and exit"
        )
        _config_dir(p)
        p.add_argument("--no-progress", action="store_true", help="no live progress line")

    @staticmethod
    def resume(p: argparse.ArgumentParser) -> None:
        p.add_argument("job_dir")
        p.add_argument("overrides", nargs="*", help="key=value, e.g. search.max_trials=50")
        p.add_argument("--no-progress", action="store_true", help="no live progress line")

    @staticmethod
    def train(p: argparse.ArgumentParser) -> None:
        p.add_argument("job_dir")
        p.add_argument(
            "overrides",
            nargs="*",
            help="key=value, e.g. search.stage2.budget.max_epochs=30 search.max_parallel_trials=4",
        )
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--top", type=int, help="retrain the N best search trials by reward")
        which.add_argument(
            "--trials", help="retrain these search trials (comma-separated ids, e.g. 3,17)"
        )
        p.add_argument("--no-progress", action="store_true", help="no live progress line")

    @staticmethod
    def status(p: argparse.ArgumentParser) -> None:
        p.add_argument("job_dir")
        p.add_argument("--format", choices=["table", "json"], default="table")

    @staticmethod
    def stop(p: argparse.ArgumentParser) -> None:
        p.add_argument("job_dir")
        p.add_argument(
            "--now",
            action="store_true",
            help="stop at once: kill the running trials and set them back to pending",
        )

    @staticmethod
    def trials(p: argparse.ArgumentParser) -> None:
        sub = p.add_subparsers(dest="trials_command", metavar="list|show", required=True)
        listing = _debug(sub.add_parser("list", help="all trials of a job"))
        listing.add_argument("job_dir")
        listing.add_argument("--format", choices=["table", "json", "csv"], default="table")
        listing.add_argument("--status", help="only trials of this status")
        listing.add_argument(
            "--stage",
            choices=["1", "2", "search", "train"],
            help="only search trials (1, search) or stage-2 retrainings (2, train)",
        )
        listing.add_argument("--limit", type=int, default=0, help="at most N rows (0: all)")
        show = _debug(sub.add_parser("show", help="one trial with its intermediate metrics"))
        show.add_argument("job_dir")
        show.add_argument("trial_id", type=int)
        show.add_argument("--format", choices=["text", "json"], default="text")

    @staticmethod
    def best(p: argparse.ArgumentParser) -> None:
        p.add_argument("job_dir")
        p.add_argument("--top", type=int, help="how many trials by reward (default 5)")
        p.add_argument("--format", choices=["table", "json"], default="table")
        p.add_argument(
            "--pareto", action="store_true", help="the Pareto front (non-dominated trials) instead"
        )
        p.add_argument(
            "--objective",
            action="append",
            default=[],
            metavar="METRIC:max|min",
            help="an objective of --pareto, repeatable (default: the job's controller.objectives)",
        )
        p.add_argument(
            "--plot", metavar="PNG", help="with --pareto: scatter of the trials, front highlighted"
        )

    @staticmethod
    def plot(p: argparse.ArgumentParser) -> None:
        p.add_argument("job_dir")
        p.add_argument("--out", metavar="DIR", help="folder of the PNGs (default JOB_DIR/plots)")
        p.add_argument(
            "--top",
            type=int,
            metavar="K",
            help="top trials by reward for the decision plot (10%% of succeeded, at least 5)",
        )
        p.add_argument(
            "--x", metavar="METRIC[:max|min]", help="x axis of the scatter (with --y; reward too)"
        )
        p.add_argument("--y", metavar="METRIC[:max|min]", help="y axis of the scatter (with --x)")

    @staticmethod
    def dashboard(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "job_dirs",
            nargs="*",
            metavar="JOB_DIR",
            help="job directories, or folders holding jobs (e.g. a multirun sweep)",
        )
        p.add_argument(
            "--storage", action="append", metavar="URL", help="a job's store URL (repeatable)"
        )
        p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
        p.add_argument("--port", type=int, default=8765, help="port (8765; 0: any free one)")
        p.add_argument(
            "--allow-remote",
            action="store_true",
            help="allow a --host beyond this machine (needs --token)",
        )
        p.add_argument(
            "--token",
            help="access token every request must carry (or $CORENAS_DASHBOARD_TOKEN)",
        )

    @staticmethod
    def export(p: argparse.ArgumentParser) -> None:
        # options checked by export_cmd, so that a bad one is a one-line error
        p.add_argument("job_dir")
        p.add_argument("--trial", metavar="ID", help="export this trial (search or stage 2)")
        p.add_argument(
            "--top",
            metavar="N",
            help="export the N best search trials by reward, each as its stage-2 retraining "
            "when it has one",
        )
        p.add_argument(
            "--format",
            metavar="onnx|torchscript|state_dict|json",
            help="model file beside architecture.json (json: none)",
        )
        p.add_argument(
            "--out", metavar="DIR", help="where the trial-<id> folders go (default JOB_DIR/export)"
        )

    @staticmethod
    def space(p: argparse.ArgumentParser) -> None:
        sub = p.add_subparsers(
            dest="space_command", metavar="show|sample|validate|check", required=True
        )
        show = _debug(sub.add_parser("show", help="decisions, options and exact size"))
        show.add_argument("name", help="a space/ config option or a registered space name")
        show.add_argument("overrides", nargs="*", help="space parameters, e.g. max_layers=2")
        show.add_argument("--format", choices=["table", "json"], default="table")
        _config_dir(show)
        sample = _debug(sub.add_parser("sample", help="random genomes as JSON"))
        sample.add_argument("name")
        sample.add_argument("overrides", nargs="*", help="space parameters, e.g. max_layers=2")
        sample.add_argument("-n", type=int, default=1, help="how many")
        sample.add_argument("--seed", type=int, default=0)
        _config_dir(sample)
        validate = _debug(sub.add_parser("validate", help="check a genome (JSON text or file)"))
        validate.add_argument("name")
        validate.add_argument("genome", help="JSON object, or @FILE / path of a JSON file")
        validate.add_argument("overrides", nargs="*", help="space parameters")
        _config_dir(validate)
        check = _debug(
            sub.add_parser(
                "check",
                help="sample and measure N architectures: build rate, metric spread, the "
                "fraction satisfying constraints",
            )
        )
        check.add_argument("name", help="a space/ config option or a registered space name")
        check.add_argument("overrides", nargs="*", help="space parameters, e.g. max_layers=2")
        check.add_argument(
            "--constraint",
            action="append",
            default=[],
            metavar="EXPR",
            help="METRIC OP NUMBER with OP <=, <, >=, >, e.g. 'params<=50000'; repeatable, "
            "all must hold",
        )
        check.add_argument("-n", type=int, default=100, help="architectures to sample (100)")
        check.add_argument(
            "--seed", type=int, default=0, help="seed of the sample and the models' weights (0)"
        )
        check.add_argument(
            "--backend",
            default="analytic",
            metavar="NAME",
            help="hardware backend that measures: a hardware/ option or registered name "
            "(analytic; cpu adds latency_ms)",
        )
        check.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a backend parameter, e.g. runs=20; repeatable",
        )
        check.add_argument(
            "--reward",
            metavar="NAME",
            help="a reward/ option or reward name: its hard constraints also decide "
            "feasibility; reports its range with accuracy = 1",
        )
        check.add_argument(
            "--data", metavar="NAME", help="dataset that sizes the space's models, as data=NAME"
        )
        check.add_argument(
            "--input-shape", metavar="C,H,W", help="model input without the batch (space's)"
        )
        check.add_argument("--batch-size", type=int, metavar="B", help="input batch size (1)")
        check.add_argument(
            "--out", metavar="DIR", help="write DIR/space_check.json and DIR/space_check.png"
        )
        check.add_argument("--format", choices=["text", "json"], default="text")
        check.add_argument("--no-progress", action="store_true", help="no progress on stderr")
        _config_dir(check)

    @staticmethod
    def proxy(p: argparse.ArgumentParser) -> None:
        sub = p.add_subparsers(
            dest="proxy_command",
            metavar="select-models|train-candidates|search|variance",
            required=True,
        )
        select = _debug(
            sub.add_parser(
                "select-models",
                help="train random models, keep a spread of accuracy and latency as candidates",
            )
        )
        select.add_argument("proxy_dir", help="the proxy directory (created; reused on rerun)")
        select.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=digits")
        select.add_argument("--models", type=int, default=30, help="random models to train (30)")
        select.add_argument(
            "--keep", type=int, default=10, help="correlation candidates to keep (10)"
        )
        select.add_argument("--drop", type=int, default=5, help="models dropped per round (5)")
        select.add_argument("--max-failed", type=int, default=6, help="failed models allowed (6)")
        select.add_argument("--metric", default="accuracy", help="quality metric (accuracy)")
        select.add_argument(
            "--latency-metric", default="latency_ms", help="cost metric to spread (latency_ms)"
        )
        _config_dir(select)
        full = _debug(
            sub.add_parser("train-candidates", help="full training (stage 2) of the candidates")
        )
        full.add_argument("proxy_dir")
        full.add_argument(
            "overrides", nargs="*", help="as for corenas train, e.g. search.stage2.budget.epochs=30"
        )
        search = _debug(
            sub.add_parser(
                "search", help="train the candidates under each proxy config; Kendall tau per step"
            )
        )
        search.add_argument("proxy_dir")
        search.add_argument(
            "--configs", required=True, metavar="YAML", help="configs: [{name, overrides}]"
        )
        search.add_argument("--threshold", type=float, help="tau to reach (default 0.65)")
        search.add_argument(
            "--hold", type=int, help="evaluation steps in a row at the threshold (default 1)"
        )
        search.add_argument("--time-limit-s", type=float, help="per config, this run")
        search.add_argument(
            "--full-results", metavar="JSON", help="[{genome, METRIC}] instead of stage 2"
        )
        search.add_argument(
            "--parallel", type=int, help="trainings at once (default: all candidates)"
        )
        search.add_argument("--metric", help="default: the selection's metric")
        variance = _debug(
            sub.add_parser("variance", help="repeat a proxy training: CV and curve smoothness")
        )
        variance.add_argument("proxy_dir")
        variance.add_argument(
            "--config", help="a proxy config of the search, or 'baseline' (default: the chosen)"
        )
        variance.add_argument("-k", "--repeats", type=int, default=5, help="trainings (5)")
        variance.add_argument("--trial", type=int, help="selection trial (default: top candidate)")
        variance.add_argument("--metric", help="default: the selection's metric")
        for command in (select, full, search, variance):
            command.add_argument("--no-progress", action="store_true", help="no progress line")

    @staticmethod
    def estimate(p: argparse.ArgumentParser) -> None:
        p.add_argument("--trials", type=int, required=True)
        p.add_argument("--hours-per-trial", type=float, required=True)
        p.add_argument("--gpus-per-trial", type=int, required=True)
        p.add_argument("--parallel", type=int, required=True)
        p.add_argument("--price-per-gpu-hour", type=float)
        p.add_argument("--stage2-models", type=int, default=0)
        p.add_argument("--stage2-hours", type=float, default=0.0)
        p.add_argument("--stage2-gpus", type=int, default=0)
        p.add_argument("--format", choices=["table", "json"], default="table")

    @staticmethod
    def benchmark(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--table", default="nb201", help="nb201 or the path of a table YAML file (nb201)"
        )
        p.add_argument("--metric", help="the table's metric to optimise (its first)")
        p.add_argument("--mode", choices=["max", "min"], default="max")
        p.add_argument(
            "--controllers", default="random,evolution", help="comma-separated (random,evolution)"
        )
        p.add_argument("--budgets", default="50,100,300", help="trial counts to report")
        p.add_argument("--seeds", type=int, default=50, help="runs per controller, seeds S..S+N-1")
        p.add_argument(
            "--first-seed",
            type=int,
            default=0,
            metavar="S",
            help="the first seed (0); e.g. confirm a result on held-out seeds",
        )
        p.add_argument(
            "--noise", type=float, default=0.0, help="std of Gaussian noise on observed values"
        )
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="CONTROLLER.KEY=VALUE",
            help="a controller parameter, e.g. evolution.population_size=20; repeatable",
        )
        p.add_argument("--jobs", type=int, help="worker processes (default: CPU count)")
        p.add_argument("--format", choices=["table", "json"], default="table")
        p.add_argument("--plot", metavar="PNG", help="write the incumbent curves to this PNG")
        p.add_argument("--no-progress", action="store_true", help="no progress line")
        _config_dir(p)

    @staticmethod
    def latency_server(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
        p.add_argument("--port", type=int, default=8765, help="port (8765; 0: any free port)")
        p.add_argument(
            "--token-file", required=True, help="file holding the shared token (mode 600)"
        )
        p.add_argument("--backend", default="cpu", help="hardware backend that measures (cpu)")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a backend parameter, e.g. threads=1 or runs=100; repeatable",
        )
        p.add_argument(
            "--max-model-mb", type=float, default=200.0, help="largest model file accepted (200)"
        )

    @staticmethod
    def measure(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--space", required=True, metavar="NAME", help="a space/ config option or space name"
        )
        p.add_argument("overrides", nargs="*", help="space parameters, e.g. max_layers=2")
        p.add_argument(
            "--data", metavar="NAME", help="dataset that sizes the space's models, as data=NAME"
        )
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--genome", metavar="FILE", help="JSON or YAML file: one genome or a list of genomes"
        )
        which.add_argument("--sample", type=int, metavar="N", help="N random architectures")
        p.add_argument(
            "--seed", type=int, default=0, help="seed of --sample and of the models' weights"
        )
        p.add_argument(
            "--backend",
            required=True,
            metavar="NAME",
            help="hardware backend: a hardware/ config option or a registered name (cpu, ...)",
        )
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a backend parameter, e.g. threads=2 or runs=20; repeatable",
        )
        p.add_argument(
            "--input-shape",
            metavar="C,H,W",
            help="model input without the batch (default: space's)",
        )
        p.add_argument("--batch-size", type=int, metavar="B", help="input batch size (default 1)")
        p.add_argument("--format", choices=["table", "json"], default="table")
        _config_dir(p)

    @staticmethod
    def hardware(p: argparse.ArgumentParser) -> None:
        sub = p.add_subparsers(dest="hardware_command", metavar="profile|show", required=True)
        profile = _debug(
            sub.add_parser("profile", help="time each distinct layer of a space once: a table")
        )
        profile.add_argument(
            "--space", required=True, metavar="NAME", help="a space/ config option or space name"
        )
        profile.add_argument(
            "--backend", default="cpu", metavar="NAME", help="timing backend (default cpu)"
        )
        profile.add_argument(
            "--data", metavar="NAME", help="dataset that sizes the space's models, as data=NAME"
        )
        profile.add_argument("overrides", nargs="*", help="space parameters, e.g. max_layers=2")
        profile.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a backend parameter, e.g. runs=20 or threads=1; repeatable",
        )
        profile.add_argument(
            "--samples", type=int, default=100, help="architectures to evaluate on (100)"
        )
        profile.add_argument(
            "--calibration", type=int, default=50, help="architectures to calibrate on (50)"
        )
        profile.add_argument(
            "--rounds",
            type=int,
            default=5,
            help="passes over every timing, keeping the fastest (5)",
        )
        profile.add_argument(
            "--patience",
            type=int,
            default=500,
            help="stop sampling after N draws without a new layer",
        )
        profile.add_argument(
            "--max-architectures", type=int, default=5000, help="most architectures to sample"
        )
        profile.add_argument(
            "--input-shape",
            metavar="C,H,W",
            help="model input without the batch (default: space's)",
        )
        profile.add_argument("--batch-size", type=int, metavar="B", help="input batch size (1)")
        profile.add_argument("--seed", type=int, default=0, help="sampling seed (0)")
        profile.add_argument(
            "--out", metavar="FILE", help="table file (default latency-SPACE-BACKEND.json)"
        )
        profile.add_argument("--format", choices=["table", "json"], default="table")
        profile.add_argument("--no-progress", action="store_true", help="no progress line")
        _config_dir(profile)
        show = _debug(sub.add_parser("show", help="a latency table's header and quality"))
        show.add_argument("table", metavar="FILE")
        show.add_argument("--entries", action="store_true", help="also list every layer's time")
        show.add_argument("--format", choices=["table", "json"], default="table")

    @staticmethod
    def plugins(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=["table", "json"], default="table")
        p.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="also list every registered name with its description",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``corenas`` console script; returns the exit code."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # overrides after an option (`search a=1 --no-progress b=2`) are still overrides
        if not hasattr(args, "overrides") or any(item.startswith("-") for item in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        args.overrides = [*args.overrides, *extras]
    if args.version:
        from corenas import __version__

        print(f"corenas {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 0
    debug = bool(getattr(args, "debug", False))
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # trainer targets in the current directory, as python -m
    try:
        module = importlib.import_module(COMMANDS[args.command][0])
        code = module.run(args)
        sys.stdout.flush()
        return int(code or 0)
    except BrokenPipeError:
        return _closed_pipe()
    except Exception as exc:
        from corenas.errors import CorenasError

        if debug:
            raise
        if isinstance(exc, CorenasError):
            print(f"corenas {args.command}: error: {exc}", file=sys.stderr)
            return exc.exit_code
        print(
            f"corenas {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(rerun with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"corenas {args.command}: interrupted", file=sys.stderr)
        return 130


def _closed_pipe() -> int:
    """The reader of our output went away (``corenas trials list JOB | head``): stop quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
