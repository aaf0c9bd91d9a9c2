"""The ``command`` trainer and ``corenas.report``: a program's side of the contract, failures,
early stopping, and whole searches through the CLI (docs/bring-your-own-trainer.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import corenas
from corenas.errors import ConfigError, TrialError
from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins
from corenas.records import Metrics, Trial, TrialStatus
from corenas.trainer.base import TrialContext, TrialStopped
from corenas.trainer.command import CommandTrainer, _MetricsTail

REPO = Path(__file__).resolve().parents[2]
GENOME = {"layers": 2, "layers.0.width": 64, "activation": "relu", "lr": 0.01}
SEARCH = ["space=tabular_mlp", "hardware=none", "reward=accuracy", "trainer=command"]


def context(tmp_path: Path, reports: list[tuple[int, Metrics]] | None = None) -> TrialContext:
    def reporter(step: int, metrics: Metrics) -> None:
        if reports is not None:
            reports.append((step, metrics))

    return TrialContext(
        trial_id=7,
        genome=dict(GENOME),
        arch_id="abc",
        trial_dir=str(tmp_path / "job" / "trials" / "7"),
        seed=11,
        reporter=reporter,
        devices=[0, 2],
        budget={"epochs": 2},
        stage="train",
    )


def python(tmp_path: Path, body: str, **params: Any) -> CommandTrainer:
    """A trainer running ``body`` as a Python script (polled often, killed quickly)."""
    script = tmp_path / "script.py"
    script.write_text(body)
    params.setdefault("poll_s", 0.02)
    params.setdefault("grace_s", 0.5)
    return CommandTrainer(command=[sys.executable, str(script), *params.pop("args", [])], **params)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_arguments_placeholders_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("CORENAS_")]:  # e.g. CI's CORENAS_REQUIRE_*
        monkeypatch.delenv(name)
    trainer = python(
        tmp_path,
        "import json, os, sys\n"
        "seen = {'argv': sys.argv[1:], 'cwd': os.getcwd(), 'env': {k: v for k, v in "
        "os.environ.items() if k.startswith('CORENAS_') or k in ('CUDA_VISIBLE_DEVICES', 'X')}}\n"
        "open(os.path.join(os.environ['CORENAS_TRIAL_DIR'], 'seen.json'), 'w').write("
        "json.dumps(seen))\n"
        "open(os.environ['CORENAS_METRICS_FILE'], 'a').write('{\"accuracy\": 0.5}\\n')\n",
        args=["{trial_id}", "{trial_dir}", "{metrics_file}", "{job_dir}", "{seed}", "{arch_file}"],
        cwd=str(tmp_path),
        env={"X": 1},
    )
    assert trainer.fit(None, context(tmp_path)) == {"accuracy": 0.5}
    trial_dir = tmp_path / "job" / "trials" / "7"
    seen = json.loads((trial_dir / "seen.json").read_text())
    arch, metrics = str(trial_dir / "arch.json"), str(trial_dir / "metrics.jsonl")
    job = str(tmp_path / "job")
    assert seen["argv"] == ["7", str(trial_dir), metrics, job, "11", arch]  # no --arch added
    assert seen["cwd"] == str(tmp_path)
    assert seen["env"] == {
        "CORENAS_ARCH_FILE": arch,
        "CORENAS_TRIAL_ID": "7",
        "CORENAS_TRIAL_DIR": str(trial_dir),
        "CORENAS_JOB_DIR": job,
        "CORENAS_METRICS_FILE": metrics,
        "CORENAS_SEED": "11",
        "CORENAS_STAGE": "train",
        "CORENAS_BUDGET": '{"epochs": 2}',
        "CUDA_VISIBLE_DEVICES": "0,2",
        "X": "1",
    }
    assert json.loads((trial_dir / "arch.json").read_text()) == GENOME


def test_the_architecture_argument(tmp_path: Path) -> None:
    arch = str(tmp_path / "job" / "trials" / "7" / "arch.json")
    argv, _ = CommandTrainer(command="echo 'one two'").command_for(context(tmp_path))
    assert argv == ["echo", "one two", "--arch", arch]
    argv, _ = CommandTrainer(command="echo one", arch_arg=None).command_for(context(tmp_path))
    assert argv == ["echo", "one"]
    managed = ["train", "--nas_params_str", "{arch_json}"]  # the managed service's contract
    argv, _ = CommandTrainer(command=managed).command_for(context(tmp_path))
    assert argv[:2] == ["train", "--nas_params_str"] and len(argv) == 3
    assert json.loads(argv[2]) == GENOME
    ctx = context(tmp_path)
    ctx.genome = {"note": "{seed}"}  # substituted values are not substituted again
    argv, _ = CommandTrainer(command="run {arch_json} {seed} {other}").command_for(ctx)
    assert argv == ["run", '{"note":"{seed}"}', "11", "{other}"]


def test_steps_are_reported_while_running_and_the_last_values_are_final(tmp_path: Path) -> None:
    reports: list[tuple[int, Metrics]] = []
    trainer = python(
        tmp_path,
        "import corenas\n"
        "corenas.report(step=1, accuracy=0.5, loss=2)\n"
        "corenas.report(step=2, accuracy=0.75)\n"
        "corenas.report(accuracy=0.7, params=1000)\n",
    )
    metrics = trainer.fit(None, context(tmp_path, reports))
    assert reports == [(1, {"accuracy": 0.5, "loss": 2.0}), (2, {"accuracy": 0.75})]
    assert metrics == {"accuracy": 0.7, "loss": 2.0, "params": 1000.0}
    trial_dir = tmp_path / "job" / "trials" / "7"
    assert (trial_dir / "stdout.log").exists() and (trial_dir / "genome.json").exists()


def test_output_goes_to_the_trial_logs(tmp_path: Path) -> None:
    trainer = python(
        tmp_path,
        "import sys, corenas\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n"
        "corenas.report(accuracy=1)\n",
    )
    trainer.fit(None, context(tmp_path))
    trial_dir = tmp_path / "job" / "trials" / "7"
    assert (trial_dir / "stdout.log").read_text() == "to stdout\n"
    assert (trial_dir / "stderr.log").read_text() == "to stderr\n"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"accuracy": 0.5}\nnot json\n', "line 2 is not JSON"),
        ('{"accuracy": "high"}\n', "line 1: metric 'accuracy' is not a number: 'high'"),
        ('\n{"accuracy": true}\n', "line 2: metric 'accuracy' is not a number: True"),
        ('{"step": 1.5, "accuracy": 0.5}\n', "line 1: 'step' must be an integer, got 1.5"),
        ('{"loss": NaN}\n', "line 1: metric 'loss' is not finite"),
        ('{"step": 3}\n', "line 1 has no metrics"),
        ("[1, 2]\n", "line 1 is not a JSON object"),
    ],
)
def test_a_bad_metrics_line_fails_the_trial_naming_it(
    tmp_path: Path, lines: str, message: str
) -> None:
    trainer = python(
        tmp_path,
        f"import os\nopen(os.environ['CORENAS_METRICS_FILE'], 'a').write({lines!r})\n",
    )
    with pytest.raises(TrialError, match="metrics file .*metrics.jsonl ") as caught:
        trainer.fit(None, context(tmp_path))
    assert message in str(caught.value)


def test_a_crash_fails_with_the_tail_of_stderr(tmp_path: Path) -> None:
    trainer = python(
        tmp_path,
        "import sys, corenas\ncorenas.report(step=1, accuracy=0.5)\n"
        "for i in range(5):\n    print(f'line {i}', file=sys.stderr)\nsys.exit(3)\n",
        stderr_tail_lines=2,
    )
    with pytest.raises(TrialError) as caught:
        trainer.fit(None, context(tmp_path))
    assert str(caught.value) == "command exited with code 3:\nline 3\nline 4"


def test_a_silent_command_fails_with_what_to_do(tmp_path: Path) -> None:
    trainer = CommandTrainer(command="true", poll_s=0.02)
    with pytest.raises(TrialError, match="exited with code 0 but reported nothing; append JSON"):
        trainer.fit(None, context(tmp_path))


def test_a_missing_command_fails_the_trial(tmp_path: Path) -> None:
    trainer = CommandTrainer(command="./no-such-trainer --fast", cwd=str(tmp_path))
    with pytest.raises(TrialError, match="command not found: './no-such-trainer'"):
        trainer.fit(None, context(tmp_path))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"command": ""}, "trainer.command is empty"),
        ({"command": "python 'unclosed"}, "does not parse"),
        ({"command": "true", "cwd": "/no/such/dir"}, "is not a directory"),
    ],
)
def test_bad_parameters_are_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CommandTrainer(**params)


@pytest.mark.parametrize("ignores_sigterm", [False, True])
def test_early_stopping_kills_the_command_and_its_children(
    tmp_path: Path, ignores_sigterm: bool
) -> None:
    calls: list[int] = []

    def reporter(step: int, metrics: Metrics) -> None:
        calls.append(step)
        if len(calls) == 2:
            raise TrialStopped()

    trainer = python(
        tmp_path,
        "import os, signal, subprocess, time, corenas\n"
        f"if {ignores_sigterm}:\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "open('pids', 'w').write(f'{os.getpid()} {child.pid}')\n"
        "for step in range(1, 100):\n"
        "    corenas.report(step=step, accuracy=step / 100)\n"
        "    time.sleep(0.1)\n",
        cwd=str(tmp_path),
        grace_s=0.3,
    )
    ctx = context(tmp_path)
    ctx.reporter = reporter
    started = time.monotonic()
    with pytest.raises(TrialStopped):
        trainer.fit(None, ctx)
    assert calls == [1, 2]
    assert time.monotonic() - started < 8
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert all(wait_gone(pid) for pid in pids)


def test_a_truncated_metrics_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "accuracy": 0.5}\n')
    reports: list[tuple[int, Metrics]] = []
    tail = _MetricsTail(str(path), lambda step, m: reports.append((step, m)))
    try:
        tail.read()
        path.write_text("")
        with pytest.raises(TrialError, match="truncated after line 1; append to it"):
            tail.read()
    finally:
        tail.close()
    assert reports == [(1, {"accuracy": 0.5})]


def test_a_partial_line_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "accuracy": 0.5}\n{"step": 2, "acc')
    reports: list[tuple[int, Metrics]] = []
    tail = _MetricsTail(str(path), lambda step, m: reports.append((step, m)))
    try:
        tail.read()
        assert reports == [(1, {"accuracy": 0.5})]
        with path.open("a") as handle:
            handle.write('uracy": 0.6}')
        tail.read(at_end=True)
    finally:
        tail.close()
    assert reports == [(1, {"accuracy": 0.5}), (2, {"accuracy": 0.6})]
    assert tail.final == {"accuracy": 0.6}


def test_report_appends_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("CORENAS_METRICS_FILE", str(path))
    corenas.report(step=3, accuracy=0.5, params=10)
    corenas.report(loss=1.5)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"step": 3, "accuracy": 0.5, "params": 10.0}, {"loss": 1.5}]


@pytest.mark.parametrize(
    ("metrics", "error", "message"),
    [
        ({}, ValueError, "at least one metric"),
        ({"accuracy": "0.5"}, TypeError, "metric 'accuracy' must be a number"),
        ({"accuracy": True}, TypeError, "metric 'accuracy' must be a number"),
        ({"loss": float("inf")}, ValueError, "metric 'loss' must be finite"),
    ],
)
def test_report_rejects_bad_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics: dict[str, Any], error: type, message
) -> None:
    monkeypatch.setenv("CORENAS_METRICS_FILE", str(tmp_path / "metrics.jsonl"))
    with pytest.raises(error, match=message):
        corenas.report(step=1, **metrics)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_outside_a_trial_report_prints_and_architecture_raises(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CORENAS_METRICS_FILE", raising=False)
    monkeypatch.delenv("CORENAS_ARCH_FILE", raising=False)
    corenas.report(step=1, accuracy=0.5)
    assert capsys.readouterr().err == (
        'corenas.report (not in a corenas trial): {"step": 1, "accuracy": 0.5}\n'
    )
    with pytest.raises(RuntimeError, match=r"\$CORENAS_ARCH_FILE is not set"):
        corenas.architecture()


def test_architecture_reads_the_arch_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "arch.json").write_text(json.dumps(GENOME))
    monkeypatch.setenv("CORENAS_ARCH_FILE", str(tmp_path / "arch.json"))
    assert corenas.architecture() == GENOME


def test_import_corenas_stays_light() -> None:
    code = "import corenas, sys; corenas.report; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def stored_trials(job: Path) -> dict[int, tuple[Trial, list[tuple[int, Metrics]]]]:
    """Each stored trial of ``job`` with its intermediate reports, by id."""
    store = open_job_store(job, get_plugins())
    try:
        return {t.id: (t, store.intermediate(t.id)) for t in store.trials()}
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [f"bash {REPO}/examples/byo/train.sh --epochs 3", f"{sys.executable} examples/byo/train.py"],
    ids=["bash", "python"],
)
def test_the_examples_run_a_search(cli: Any, tmp_path: Path, command: str) -> None:
    job = tmp_path / "job"
    result = cli(
        "search",
        *SEARCH,
        f"trainer.command={command}",
        f"trainer.cwd={REPO}",
        "trainer.poll_s=0.05",
        "executor=local",
        "search.max_trials=3",
        f"job_dir={job}",
    )
    assert result.returncode == 0, result.stderr
    assert "completed: 3 succeeded" in result.stdout
    trials = stored_trials(job)
    assert sorted(trials) == [1, 2, 3]
    for trial, reports in trials.values():
        assert [step for step, _ in reports] == [1, 2, 3]
        assert trial.metrics["accuracy"] == reports[-1][1]["accuracy"]
        arch = json.loads((job / "trials" / str(trial.id) / "arch.json").read_text())
        assert arch == trial.genome


@pytest.mark.slow
def test_failed_commands_fail_their_trials_and_the_search_goes_on(cli: Any, tmp_path: Path) -> None:
    script = tmp_path / "train.sh"
    script.write_text(
        'case "$CORENAS_TRIAL_ID" in\n'
        '  2) echo "epoch 1 ok" >&2; echo "CUDA out of memory" >&2; exit 4 ;;\n'
        "  3) echo 'forgot to report' ;;\n"
        '  *) echo \'{"step": 1, "accuracy": 0.5}\' >> "$CORENAS_METRICS_FILE" ;;\n'
        "esac\n"
    )
    job = tmp_path / "job"
    result = cli(
        "search",
        *SEARCH,
        f"trainer.command=bash {script}",
        "executor=local",
        "search.max_trials=4",
        f"job_dir={job}",
    )
    assert result.returncode == 0, result.stderr
    trials = {i: trial for i, (trial, _) in stored_trials(job).items()}
    assert [trials[i].status.value for i in (1, 2, 3, 4)] == [
        "succeeded",
        "failed",
        "failed",
        "succeeded",
    ]
    assert trials[2].error == "command exited with code 4:\nepoch 1 ok\nCUDA out of memory"
    silent = trials[3].error or ""
    assert "exited with code 0 but reported nothing; append JSON lines to $CORENAS" in silent
    assert (job / "trials" / "3" / "stdout.log").read_text() == "forgot to report\n"


@pytest.mark.slow
def test_a_timed_out_trial_takes_its_command_with_it(cli: Any, tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text(
        "import os, time\n"
        "open(os.path.join(os.environ['CORENAS_TRIAL_DIR'], 'pid'), 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    job = tmp_path / "job"
    result = cli(
        "search",
        *SEARCH,
        f"trainer.command={sys.executable} {script}",
        "executor=local",
        "search.max_trials=1",
        "search.trial_timeout_s=3",
        f"job_dir={job}",
    )
    assert result.returncode == 0, result.stderr
    trial, _ = stored_trials(job)[1]
    assert trial.status is TrialStatus.FAILED and "timed out after 3 s" in (trial.error or "")
    pid = int((job / "trials" / "1" / "pid").read_text())
    assert wait_gone(pid)


@pytest.mark.slow
def test_early_stopping_ends_the_command(cli: Any, tmp_path: Path) -> None:
    script = tmp_path / "slow.sh"
    script.write_text(
        'echo $$ > "$CORENAS_TRIAL_DIR/pid"\n'
        "for s in 1 2 3 4 5 6 7 8 9; do\n"
        '  echo "{\\"step\\": $s, \\"accuracy\\": 0.$s}" >> "$CORENAS_METRICS_FILE"\n'
        "  sleep 0.3\n"
        "done\n"
    )
    job = tmp_path / "job"
    result = cli(
        "search",
        *SEARCH,
        f"trainer.command=bash {script}",
        "trainer.poll_s=0.05",
        "executor=local",
        "search.max_trials=1",
        "search.early_stopping.thresholds=[{step: 2, value: 0.5}]",
        f"job_dir={job}",
    )
    assert result.returncode == 0, result.stderr
    trial, reports = stored_trials(job)[1]
    assert trial.status is TrialStatus.STOPPED
    assert trial.metrics == {"accuracy": 0.2} and [step for step, _ in reports] == [1, 2]
    assert wait_gone(int((job / "trials" / "1" / "pid").read_text()))


def test_a_workers_gpus_map_back_to_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    from corenas.trainer.command import visible_devices

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_devices([0, 2]) == "0,2"  # the driver's own view: unchanged
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # a worker leased GPUs 3 and 5
    assert visible_devices([0]) == "3"
    assert visible_devices([0, 1]) == "3,5"
