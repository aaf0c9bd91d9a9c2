"""Remote target devices: ``corenas latency-server`` and the ``remote`` backend, over loopback."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from corenas_test_helpers import stored
from torch import nn

import corenas.hardware.remote as remote_module
from corenas.config import compose
from corenas.engine import start_search
from corenas.errors import ConfigError, TrialError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import InputSpec
from corenas.hardware.cpu import CpuBackend
from corenas.hardware.remote import RemoteBackend, shard_key
from corenas.hardware.server import (
    LatencyServer,
    Rejected,
    create_server,
    parse_measure_query,
    read_token,
    serve_until_signalled,
)
from corenas.plugins import get_plugins
from corenas.records import TrialStatus

pytestmark = pytest.mark.filterwarnings(  # the in-process server loads TorchScript archives
    "ignore:`torch.jit.load` is deprecated:DeprecationWarning"
)

REPO = Path(__file__).resolve().parents[2]
SPEC = InputSpec((1, 8, 8))
STARTUP_S = 120.0
"""Longest a server subprocess may take to print its ready line (torch imports on a busy VM)."""
SERVER_METRICS = {"latency_ms", "latency_p90_ms", "latency_mean_ms", "latency_cv", "model_size_mb"}
"""Figures the server's cpu backend measures (among others)."""


def conv_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10)
    )


def write_token(path: Path, token: str) -> Path:
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


class ServerProcess:
    """``corenas latency-server --port 0 ...`` in a subprocess, its output in files."""

    def __init__(self, folder: Path, token_file: Path, *args: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "server.log"
        self.errors = folder / "server.err"
        with self.log.open("w") as out, self.errors.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "corenas.cli.main", "latency-server", "--port", "0"]
                + ["--token-file", str(token_file), *args],
                stdout=out,
                stderr=err,
                env=server_env(),
            )
        self.url = self._wait_ready()

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            for line in self.log.read_text().splitlines():
                if line.startswith("latency server on "):
                    return line.split()[3]
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not start: {self.errors.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_token(tmp_path_factory.mktemp("token") / "token", "s3cret-token-for-tests-0123")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, token_file: Path) -> Iterator[ServerProcess]:
    """A live server: cpu backend, 1 warm-up and 5 timed runs, model files up to 1 MB; SIGINT
    stops it cleanly at the end."""
    started = ServerProcess(
        tmp_path_factory.mktemp("server"),
        token_file,
        *["--set", "warmup=1", "--set", "runs=5", "--max-model-mb", "1"],
    )
    yield started
    started.process.send_signal(signal.SIGINT)  # a clean stop: exit 0 and a last line
    assert started.process.wait(timeout=60) == 0, started.errors.read_text()
    assert started.log.read_text().splitlines()[-1] == "latency server stopped"


@pytest.fixture
def local_server(token_file: Path) -> Iterator[tuple[LatencyServer, list[str]]]:
    """An in-process server on a free port and the log lines it wrote."""
    lines: list[str] = []
    token = read_token(token_file, private=True)
    served = create_server("127.0.0.1", 0, token, "cpu", {"warmup": 0, "runs": 2}, log=lines.append)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served, lines
    served.shutdown()
    served.server_close()
    thread.join(timeout=30)


def backend(servers: list[str], token_file: Path, **params: Any) -> RemoteBackend:
    created = (
        get_plugins()
        .registry("hardware")
        .create("remote", servers=servers, token_file=str(token_file), **params)
    )
    assert isinstance(created, RemoteBackend)
    return created


def trial_error(measuring: RemoteBackend, model: nn.Module) -> str:
    with pytest.raises(TrialError) as info:
        measuring.measure(model, SPEC)
    message = str(info.value)
    assert "\n" not in message
    return message


def get_json(url: str, path: str, token: str) -> tuple[int, dict[str, Any]]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# --- round trip ----------------------------------------------------------------------------------


def test_round_trip_returns_server_latency_and_local_counts(
    server: ServerProcess, token_file: Path
) -> None:
    model = conv_model()
    measured = backend([server.url], token_file).measure(model, SPEC)
    metrics = measured.as_metrics()
    # the figures of the server's backend (cpu), with params, MACs and ops counted here
    assert set(metrics) == set(CpuBackend(warmup=0, runs=1).measure(model, SPEC).as_metrics())
    local = AnalyticBackend().measure(model, SPEC)
    assert (measured.params, measured.macs) == (local.params, local.macs) == (2610, 4864)
    assert measured.ops == local.ops
    assert metrics["flops"] == 2 * metrics["macs"]
    assert 0 < metrics["latency_ms"] <= metrics["latency_p90_ms"]
    assert metrics["model_size_mb"] > metrics["params"] * 4 / 2**20  # the weights travelled
    log = server.log.read_text()
    assert "POST /measure 200 torchscript 1x1x8x8 float32 latency_ms=" in log


def test_onnx_round_trip_and_malformed_onnx(
    server: ServerProcess, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    measuring = backend([server.url], token_file, format="onnx")
    model = conv_model()
    file = measuring.export(model, SPEC)
    measured = measuring.measure(model, SPEC)
    assert measured.latency_ms is not None and measured.latency_ms > 0
    assert measured.model_size_mb == len(file) / 2**20
    assert measured.memory_mb is None  # torch cannot see onnxruntime's memory
    assert (measured.params, measured.macs) == (2610, 4864)
    monkeypatch.setattr(measuring, "export", lambda model, spec: b"not a protobuf" * 100)
    assert trial_error(measuring, model).startswith(
        f"remote latency server {server.url} rejected the model file (400): not an ONNX model: "
    )


def test_health_names_backend_and_needs_the_token(server: ServerProcess, token_file: Path) -> None:
    token = read_token(token_file, private=True)
    status, health = get_json(server.url, "/health", token)
    assert status == 200
    assert health["backend"] == "cpu"
    assert health["backend_params"] == {"warmup": 1, "runs": 5}
    assert health["torch"] == torch.__version__
    assert health["device"].startswith("cpu: ")
    assert health["max_model_mb"] == 1 and health["busy"] is False
    status, answer = get_json(server.url, "/health", "not-the-token")
    assert status == 401 and set(answer) == {"error"}


# --- errors in the trial -------------------------------------------------------------------------


def test_wrong_token_is_a_clear_trial_error(
    server: ServerProcess, tmp_path: Path, token_file: Path
) -> None:
    wrong = write_token(tmp_path / "wrong", "another-token-of-enough-length")
    message = trial_error(backend([server.url], wrong), conv_model())
    assert message == (
        f"remote latency server {server.url} rejected the token (401) - check hardware.token_file"
    )


def test_malformed_file_is_a_clear_trial_error(
    server: ServerProcess, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measuring = backend([server.url], token_file)
    garbage = random.Random(0).randbytes(5000)
    monkeypatch.setattr(measuring, "export", lambda model, spec: garbage)
    message = trial_error(measuring, conv_model())
    assert message.startswith(
        f"remote latency server {server.url} rejected the model file (400): "
        "not a TorchScript archive: "
    )


def test_oversized_file_is_refused_before_upload(server: ServerProcess, token_file: Path) -> None:
    big = nn.Sequential(nn.Flatten(), nn.Linear(64, 8192))  # 2.1 MB of weights, limit 1 MB
    message = trial_error(backend([server.url], token_file), big)
    assert message.startswith(
        f"remote latency server {server.url} refused the model file as too large (413): "
        "model file of 2.0 MB is over this server's limit of 1 MB (latency-server --max-model-mb)"
    )
    local_limit = trial_error(backend([server.url], token_file, max_model_mb=0.5), big)
    assert local_limit == (
        "hardware 'remote': the torchscript model file is 2.0 MB, over hardware.max_model_mb=0.5"
    )


def test_server_killed_mid_request_is_a_clear_error_without_hanging(
    tmp_path: Path, token_file: Path
) -> None:
    slow = ServerProcess(tmp_path, token_file, *["--set", "warmup=0", "--set", "runs=1000000000"])
    try:
        measuring = backend([slow.url], token_file, timeout_s=120)
        outcome: list[BaseException] = []

        def measure() -> None:
            try:
                measuring.measure(conv_model(), SPEC)
            except BaseException as exc:
                outcome.append(exc)

        client = threading.Thread(target=measure, daemon=True)
        client.start()
        token = read_token(token_file, private=True)
        deadline = time.monotonic() + 60
        while not get_json(slow.url, "/health", token)[1]["busy"]:
            assert time.monotonic() < deadline, "the measurement never started"
            time.sleep(0.05)
        slow.process.send_signal(signal.SIGKILL)
        client.join(timeout=60)
        assert not client.is_alive(), "the client hung after the server died"
    finally:
        slow.stop()
    assert len(outcome) == 1 and isinstance(outcome[0], TrialError)
    assert str(outcome[0]) == (
        f"remote latency server {slow.url} closed the connection mid-request - did the server die?"
    )


def test_unresponsive_server_times_out(token_file: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        message = trial_error(backend([url], token_file, timeout_s=0.5), conv_model())
    assert message == (
        f"remote latency server {url} did not answer within 0.5 s - check the server or raise "
        "hardware.timeout_s"
    )


# --- sharding, failover, fallback ----------------------------------------------------------------


def test_dead_server_is_skipped_for_the_next(server: ServerProcess, token_file: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    measuring = backend([dead, server.url], token_file)
    model = next(  # a model whose shard starts at the dead server
        m
        for m in (conv_model(seed) for seed in range(64))
        if measuring.server_order(shard_key(m))[0].url == dead
    )
    assert measuring.measure(model, SPEC).latency_ms is not None


def test_all_servers_failing_lists_each_error(tmp_path: Path, token_file: Path) -> None:
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    message = trial_error(backend(dead, token_file), conv_model())
    refused = "refused the connection - is corenas latency-server running there?"
    assert message == (
        f"all 2 remote latency servers failed: {dead[0]} {refused}; {dead[1]} {refused}"
    )


def test_retries_make_more_passes(token_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_module, "RETRY_PAUSE_S", 0.0)
    measuring = backend([f"http://127.0.0.1:{free_port()}"], token_file, retries=2)
    tried: list[str] = []
    post = measuring._post

    def counting_post(server: Any, payload: bytes, spec: InputSpec) -> dict[str, float]:
        tried.append(server.url)
        return post(server, payload, spec)

    monkeypatch.setattr(measuring, "_post", counting_post)
    assert "refused the connection" in trial_error(measuring, conv_model())
    assert len(tried) == 3


def test_analytic_fallback_counts_locally_and_says_so(token_file: Path) -> None:
    measuring = backend([f"http://127.0.0.1:{free_port()}"], token_file, on_error="analytic")
    metrics = measuring.measure(conv_model(), SPEC).as_metrics()
    local = AnalyticBackend().measure(conv_model(), SPEC).as_metrics()
    assert metrics == {**local, "remote_fallback": 1.0}
    assert (metrics["params"], metrics["macs"]) == (2610, 4864)


def test_models_are_sharded_by_their_key(
    server: ServerProcess,
    token_file: Path,
    local_server: tuple[LatencyServer, list[str]],
) -> None:
    in_process, lines = local_server
    measuring = backend([server.url, in_process.url], token_file)
    keys = [random.Random(i).randbytes(32) for i in range(64)]
    firsts = {measuring.server_order(key)[0].url for key in keys}
    assert firsts == {server.url, in_process.url}  # both servers get a share
    assert [s.url for s in measuring.server_order(keys[0])] in (
        [server.url, in_process.url],
        [in_process.url, server.url],
    )
    models = [conv_model(seed) for seed in range(6)]
    assert shard_key(models[0]) == shard_key(models[0])  # stable, unlike the exported file
    expected_here = sum(
        measuring.server_order(shard_key(m))[0].url == in_process.url for m in models
    )
    for model in models:
        assert measuring.measure(model, SPEC).latency_ms is not None
    assert sum(" POST /measure 200 " in line for line in lines) == expected_here


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"servers": []}, "servers is empty; list latency servers"),
        ({"servers": ["ftp://host:1"]}, "server 'ftp://host:1' is not a URL like http://HOST:PORT"),
        ({"servers": ["http://host:1/x"]}, "is not a URL like http://HOST:PORT"),
        ({"servers": ["http://host:99999"]}, "is not a URL like http://HOST:PORT"),
        ({"token_file": None}, "token_file is required: set hardware.token_file=PATH"),
        ({"token_file": "/no/such/token"}, "token file '/no/such/token' does not exist"),
        ({"format": "pickle"}, "format must be one of torchscript, onnx, got 'pickle'"),
        ({"on_error": "retry"}, "on_error must be one of fail, analytic, got 'retry'"),
        ({"timeout_s": 0}, "timeout_s must be a number > 0, got 0"),
        ({"retries": -1}, "retries must be an integer >= 0, got -1"),
    ],
)
def test_bad_configuration_is_a_config_error(
    token_file: Path, params: dict[str, Any], message: str
) -> None:
    merged = {"servers": ["http://127.0.0.1:8765"], "token_file": str(token_file), **params}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_plugins().registry("hardware").create("remote", **merged)


def test_token_files_are_checked(tmp_path: Path) -> None:
    empty = write_token(tmp_path / "empty", "")
    with pytest.raises(ConfigError, match="is empty; write a token into it"):
        read_token(empty, private=True)
    short = write_token(tmp_path / "short", "abc")
    with pytest.raises(ConfigError, match="has 3 characters, fewer than 16"):
        read_token(short, private=True)
    shared = write_token(tmp_path / "shared", "a-token-of-enough-length")
    shared.chmod(0o644)
    with pytest.raises(ConfigError, match=f"mode 644\\); make it private with: chmod 600 {shared}"):
        read_token(shared, private=True)
    assert read_token(shared, private=False) == "a-token-of-enough-length"


def test_server_refuses_a_shared_token_file_in_one_line(cli: Any, tmp_path: Path) -> None:
    shared = write_token(tmp_path / "token", "a-token-of-enough-length")
    shared.chmod(0o640)
    result = cli("latency-server", "--port", "0", "--token-file", str(shared), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"corenas latency-server: error: token file '{shared}' is accessible to group or "
        f"others (mode 640); make it private with: chmod 600 {shared}"
    )


def test_measure_requests_are_checked() -> None:
    request = parse_measure_query("input_shape=3,32,32&batch_size=4")
    assert (request.format, request.input_shape, request.batch_size, request.dtype) == (
        "torchscript",
        (3, 32, 32),
        4,
        "float32",
    )
    for query, reason in [
        ("", "parameter 'input_shape' is required"),
        ("input_shape=3,x", "must be comma-separated integers"),
        ("input_shape=3&format=pickle", "format must be one of torchscript, onnx"),
        ("input_shape=3&dtype=object", "dtype must be one of"),
        ("input_shape=3&runs=9", "unknown parameter 'runs'"),
        ("input_shape=100000,100000", "over this server's"),
    ]:
        with pytest.raises(Rejected, match=reason) as info:
            parse_measure_query(query)
        assert info.value.status == 400


def test_sigterm_stops_the_server_cleanly() -> None:
    stopped = create_server("127.0.0.1", 0, "x" * 16, "cpu", {}, log=lambda line: None)
    before = signal.getsignal(signal.SIGTERM)

    def terminate_once_handled() -> None:
        deadline = time.monotonic() + 30
        while signal.getsignal(signal.SIGTERM) is before and time.monotonic() < deadline:
            time.sleep(0.01)
        if signal.getsignal(signal.SIGTERM) is not before:
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_handled, daemon=True)
    killer.start()
    serve_until_signalled(stopped)  # returns once SIGTERM arrives
    killer.join(timeout=30)
    assert signal.getsignal(signal.SIGTERM) is before
    assert stopped.socket.fileno() == -1  # the listening socket is closed


# --- searches ------------------------------------------------------------------------------------


def remote_overrides(url: str, token: Path, job_dir: Path) -> list[str]:
    return [
        "space=digits_cnn",
        "space.max_layers=1",
        "hardware=remote",
        f"hardware.servers=[{url}]",
        f"hardware.token_file={token}",
        "trainer=function",
        "trainer.target=corenas.testing:scripted_trainer",
        "reward=accuracy",
        "executor=inline",
        "search.max_trials=2",
        f"job_dir={job_dir}",
    ]


def test_cli_search_stores_remote_latency(
    cli: Any, server: ServerProcess, token_file: Path, tmp_path: Path
) -> None:
    job = tmp_path / "job"
    result = cli("search", *remote_overrides(server.url, token_file, job), "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    trials, _ = stored(job)
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 2
    for trial in trials:
        assert set(trial.metrics) >= {"params", "macs", "flops", "accuracy"} | SERVER_METRICS
        assert trial.metrics["latency_ms"] > 0


def test_wrong_token_fails_the_trials_with_the_reason(
    server: ServerProcess, tmp_path: Path
) -> None:
    wrong = write_token(tmp_path / "wrong", "another-token-of-enough-length")
    job = tmp_path / "job"
    plugins = get_plugins()
    start_search(
        compose(plugins, remote_overrides(server.url, wrong, job)), plugins, job, progress=False
    )
    trials, _ = stored(job)
    assert [t.status for t in trials] == [TrialStatus.FAILED] * 2
    assert {t.error for t in trials} == {
        f"remote latency server {server.url} rejected the token (401) - check hardware.token_file"
    }
