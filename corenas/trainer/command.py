"""The ``command`` trainer: any program (a script, a binary, a container) trains the trial.

The contract, for the program's side, is in docs/bring-your-own-trainer.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from corenas.errors import ConfigError, TrialError
from corenas.processes import die_with_parent_preexec
from corenas.records import Metrics
from corenas.trainer.base import Trainer, TrialContext

ARCH_FILE = "arch.json"
METRICS_FILE = "metrics.jsonl"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
ARCH_PLACEHOLDERS = ("{arch_file}", "{arch_json}")
"""Either one in the command means the command takes the architecture itself: no
``arch_arg`` is appended."""

REPORT_HINT = (
    "append JSON lines to $CORENAS_METRICS_FILE, e.g. "
    """echo '{"step": 1, "accuracy": 0.9}' >> "$CORENAS_METRICS_FILE" """
    "or corenas.report(step=1, accuracy=0.9)"
)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class _MetricsTail:
    """Reads the JSON lines a command appends to its metrics file, as they arrive.

    Keeps the last value of every metric (the final metrics) and hands each line with a
    ``step`` to ``report``. Raises ``TrialError`` naming the line number of a bad line.
    """

    def __init__(self, path: str, report: Callable[[int, Metrics], None]) -> None:
        self.path = path
        self.report = report
        self.final: Metrics = {}
        self._handle: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._pending = b""
        self._line_number = 0

    def close(self) -> None:
        self._handle.close()

    def read(self, at_end: bool = False) -> None:
        """Take the complete lines written since the last call (``at_end``: the rest too)."""
        if os.fstat(self._handle.fileno()).st_size < self._handle.tell():
            raise TrialError(
                f"metrics file {self.path} was truncated after line {self._line_number}; "
                "append to it (>> in a shell, open(path, 'a') in Python) instead of rewriting it"
            )
        self._pending += self._handle.read()
        *lines, self._pending = self._pending.split(b"\n")
        if at_end and self._pending:
            lines.append(self._pending)
            self._pending = b""
        for raw in lines:
            self._line_number += 1
            self._take(raw)

    def _take(self, raw: bytes) -> None:
        where = f"metrics file {self.path} line {self._line_number}"
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrialError(f"{where} is not JSON ({exc.msg}): {text[:200]}") from None
        if not isinstance(line, dict):
            raise TrialError(f"{where} is not a JSON object: {text[:200]}")
        step = line.pop("step", None)
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise TrialError(f"{where}: 'step' must be an integer, got {step!r}")
        if not line:
            raise TrialError(f"{where} has no metrics: {text[:200]}")
        for name, value in line.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TrialError(f"{where}: metric '{name}' is not a number: {value!r}")
            if not math.isfinite(value):
                raise TrialError(f"{where}: metric '{name}' is not finite: {value!r}")
        metrics = {name: float(value) for name, value in line.items()}
        self.final.update(metrics)
        if step is not None:
            self.report(step, metrics)


class CommandTrainer(Trainer):
    """Trains each trial by running a command ("bring your own trainer").

    ``command`` (a string split like a shell would, or a list) gets the architecture as
    ``arch_arg PATH`` appended (default ``--arch PATH``; ``null`` appends nothing), unless it
    has an ``{arch_file}`` or ``{arch_json}`` placeholder; ``{trial_id}``, ``{trial_dir}``,
    ``{metrics_file}``, ``{job_dir}`` and ``{seed}`` are substituted too, and ``CORENAS_*``
    environment variables carry the same. The command runs in ``cwd`` (default: the current
    directory) with ``env`` added to the environment, in its own process group; it dies with
    the process that started it. Its output goes to ``stdout.log``/``stderr.log`` in the trial
    directory. Lines it appends to the metrics file with a ``step`` are reported while it runs
    (polled every ``poll_s`` seconds); the final metrics are the last value of each metric over
    all lines. The trial fails, with the last ``stderr_tail_lines`` lines of stderr, when the
    command exits non-zero; it also fails when the command cannot start, writes a bad line,
    or exits 0 having reported nothing. When early stopping ends the trial, the command's
    process group gets SIGTERM, then SIGKILL after ``grace_s`` seconds.
    """

    def __init__(
        self,
        command: str | list[str],
        cwd: str | None = None,
        env: dict[str, Any] | None = None,
        arch_arg: str | None = "--arch",
        stderr_tail_lines: int = 20,
        poll_s: float = 0.5,
        grace_s: float = 10.0,
    ) -> None:
        if isinstance(command, str):
            try:
                argv = shlex.split(command)
            except ValueError as exc:
                raise ConfigError(f"trainer.command {command!r} does not parse: {exc}") from exc
        else:
            argv = [str(part) for part in command]
        if not argv:
            raise ConfigError("trainer.command is empty; e.g. trainer.command='python train.py'")
        if cwd is not None and not os.path.isdir(cwd):
            raise ConfigError(f"trainer.cwd '{cwd}' is not a directory")
        if stderr_tail_lines < 0:
            raise ConfigError(f"trainer.stderr_tail_lines must be >= 0, got {stderr_tail_lines}")
        if poll_s <= 0 or grace_s < 0:
            raise ConfigError("trainer.poll_s must be > 0 and trainer.grace_s >= 0")
        self.argv = argv
        self.cwd = os.path.abspath(cwd) if cwd is not None else None
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.arch_arg = arch_arg or None
        self.stderr_tail_lines = stderr_tail_lines
        self.poll_s = poll_s
        self.grace_s = grace_s

    def command_for(self, context: TrialContext) -> tuple[list[str], dict[str, str]]:
        """The argv and the ``CORENAS_*`` (and ``CUDA_VISIBLE_DEVICES``) variables of a trial."""
        trial_dir = os.path.abspath(context.trial_dir)
        arch_file = os.path.join(trial_dir, ARCH_FILE)
        metrics_file = os.path.join(trial_dir, METRICS_FILE)
        job_dir = os.path.dirname(os.path.dirname(trial_dir))
        values = {
            "{arch_file}": arch_file,
            "{arch_json}": json.dumps(context.genome, separators=(",", ":")),
            "{trial_id}": str(context.trial_id),
            "{trial_dir}": trial_dir,
            "{metrics_file}": metrics_file,
            "{job_dir}": job_dir,
            "{seed}": str(context.seed),
        }
        pattern = re.compile("|".join(re.escape(placeholder) for placeholder in values))
        argv = [pattern.sub(lambda match: values[match.group(0)], part) for part in self.argv]
        if self.arch_arg and not any(p in a for a in self.argv for p in ARCH_PLACEHOLDERS):
            argv += [self.arch_arg, arch_file]
        variables = {
            "CORENAS_ARCH_FILE": arch_file,
            "CORENAS_TRIAL_ID": str(context.trial_id),
            "CORENAS_TRIAL_DIR": trial_dir,
            "CORENAS_JOB_DIR": job_dir,
            "CORENAS_METRICS_FILE": metrics_file,
            "CORENAS_SEED": str(context.seed),
            "CORENAS_STAGE": context.stage,
            "CORENAS_BUDGET": json.dumps(context.budget),
        }
        if context.devices:
            variables["CUDA_VISIBLE_DEVICES"] = visible_devices(context.devices)
        return argv, variables

    def fit(self, model: Any, context: TrialContext) -> Metrics:
        trial_dir = context.make_trial_dir()
        argv, variables = self.command_for(context)
        with open(variables["CORENAS_ARCH_FILE"], "w", encoding="utf-8") as handle:
            json.dump(context.genome, handle, indent=2)
        metrics_file = variables["CORENAS_METRICS_FILE"]
        open(metrics_file, "wb").close()  # a fresh, empty file for this run
        env = {**os.environ, **self.env, **variables}
        stderr_path = os.path.join(trial_dir, STDERR_FILE)
        with (
            open(os.path.join(trial_dir, STDOUT_FILE), "wb") as stdout,
            open(stderr_path, "wb") as stderr,
            self._started(argv, env, stdout, stderr) as process,
        ):
            tail = _MetricsTail(metrics_file, context.reporter)
            try:
                code = self._follow(process, tail)
                try:
                    tail.read(at_end=True)
                except TrialError:
                    if code == 0:
                        raise
            finally:
                tail.close()
        if code != 0:
            raise TrialError(f"command {_exit_reason(code)}{self._stderr_tail(stderr_path)}")
        if not tail.final:
            raise TrialError(f"command exited with code 0 but reported nothing; {REPORT_HINT}")
        return tail.final

    def _follow(self, process: subprocess.Popen[bytes], tail: _MetricsTail) -> int:
        """Report the command's lines while it runs; returns its exit code."""
        while True:
            try:
                return process.wait(timeout=self.poll_s)
            except subprocess.TimeoutExpired:
                tail.read()

    @contextlib.contextmanager
    def _started(
        self, argv: list[str], env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes]
    ) -> Iterator[subprocess.Popen[bytes]]:
        """Start ``argv`` in its own process group; on leaving, end whatever of the group is
        left (SIGTERM, then SIGKILL after ``grace_s`` while the command itself runs)."""
        try:
            process = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=die_with_parent_preexec(),
            )
        except FileNotFoundError as exc:
            where = self.cwd or os.getcwd()
            raise TrialError(
                f"command not found: '{argv[0]}' ({exc.strerror}): not on PATH, or a path "
                f"(relative to {where}) that does not exist, or a script whose #! interpreter "
                "is missing"
            ) from None
        except PermissionError as exc:
            raise TrialError(f"command '{argv[0]}' cannot be run: {exc.strerror}") from None
        try:
            yield process
        finally:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                deadline = time.monotonic() + self.grace_s
                while process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
            _signal_group(process.pid, signal.SIGKILL)  # the command's leftover children too
            process.wait()

    def _stderr_tail(self, path: str) -> str:
        """``:`` and the last ``stderr_tail_lines`` lines of the command's stderr, or where to
        look."""
        if self.stderr_tail_lines == 0:
            return f" (see {path})"
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
        lines = text.rstrip().splitlines()[-self.stderr_tail_lines :]
        if not lines:
            return f"; stderr was empty (see {STDOUT_FILE} next to {path})"
        return ":\n" + "\n".join(lines)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def visible_devices(devices: list[int]) -> str:
    """``CUDA_VISIBLE_DEVICES`` for a child that should use this process's GPUs ``devices``
    (numbered as this process sees them): a worker of the local executor sees its own GPUs
    as 0, 1, ..., so they are mapped back through its ``CUDA_VISIBLE_DEVICES``."""
    own = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return ",".join(own[d] if d < len(own) else str(d) for d in devices)
