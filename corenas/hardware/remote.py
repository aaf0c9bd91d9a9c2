"""The ``remote`` backend: measures each model on a target device running
``corenas latency-server``, by sending it the model as a TorchScript (or ONNX) file."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import importlib.util
import io
import json
import math
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from corenas.errors import ConfigError, TrialError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import HardwareBackend, HardwareMetrics, InputSpec
from corenas.hardware.server import (
    BYTES_PER_MB,
    DEFAULT_MAX_MODEL_MB,
    FORMATS,
    MEASURE_PATH,
    read_token,
)

ON_ERROR = ("fail", "analytic")
MAX_ANSWER_BYTES = 1 << 20
"""Longest answer read from a server (a metrics answer is a few hundred bytes)."""
RETRY_PAUSE_S = 1.0
"""Pause between two passes over the server list (``retries``)."""
LOCAL_FIELDS = ("params", "macs", "flops", "ops")
"""Figures counted here (the ``analytic`` counter), never taken from a server."""


@dataclass(frozen=True)
class Server:
    """A latency server's address, from a URL ``http(s)://HOST:PORT``."""

    url: str
    https: bool
    host: str
    port: int


def parse_server(url: Any) -> Server:
    """``url`` checked and split; ``ConfigError`` unless it is ``http://HOST[:PORT]`` or
    ``https://HOST[:PORT]`` with no path, query, fragment or credentials."""
    problem = f"hardware 'remote': server {url!r} is not a URL like http://HOST:PORT"
    if not isinstance(url, str):
        raise ConfigError(problem)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(problem) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ConfigError(problem)
    https = parts.scheme == "https"
    port = port if port is not None else (443 if https else 80)
    return Server(url.strip().rstrip("/"), https, parts.hostname, port)


def shard_key(model: Any) -> bytes:
    """SHA-256 of ``repr(model)`` and its state_dict (names, dtypes, shapes, values): equal
    for the same model, whatever its exported file looks like (TorchScript files of one model
    differ from one export to the next)."""
    import torch

    digest = hashlib.sha256(repr(model).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        try:
            flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
            digest.update(flat.numpy().tobytes())
        except (RuntimeError, TypeError):  # quantized or sparse: structure only
            pass
    return digest.digest()


class ServerFailure(Exception):
    """Server ``url`` could not measure (unreachable, token, timeout, died) for ``reason``;
    the next server may."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"remote latency server {url} {reason}")
        self.url = url
        self.reason = reason


class AllServersFailed(Exception):
    """No server of the list measured; the message names each one's last error."""


class ModelRejected(Exception):
    """A server refused the model itself (too large, malformed, failing); others would too."""


class RemoteBackend(HardwareBackend):
    """Sends each model to a latency server and reports what the server's backend measured.

    ``measure`` exports the model in eval mode, in memory: ``torch.jit.trace`` on one input batch
    of the input spec, saved with ``torch.jit.save`` (``format: onnx``: ``torch.onnx.export``).
    It POSTs the file with the token from ``token_file`` to the servers in the order
    ``server_order`` gives for the model's ``shard_key`` (sharding: the SHA-256 of the model's
    structure and weights picks the first server, the others follow in list order), moving on
    when a server fails (unreachable, token refused, timeout, died) and making ``retries`` more
    passes over the list, ``RETRY_PAUSE_S`` apart. A file a server refuses (413 too large, 400
    malformed, 422 failing forward pass) is not sent to another. Every socket operation times
    out after ``timeout_s``.

    Parameters, MACs, FLOPs and ops are counted here (the ``analytic`` counter); every other
    figure is the server's (latency, memory, model size, extras). When no server measures, the trial
    fails with one line naming each server's error, or, with ``on_error: analytic``, the
    metrics are the local counts plus ``remote_fallback = 1``.
    """

    name = "remote"
    timed = False

    def __init__(
        self,
        servers: list[str] | str,
        token_file: str | None = None,
        format: str = "torchscript",
        timeout_s: float = 60.0,
        retries: int = 0,
        on_error: str = "fail",
        max_model_mb: float = DEFAULT_MAX_MODEL_MB,
    ) -> None:
        where = f"hardware '{self.name}'"
        urls = [servers] if isinstance(servers, str) else list(servers)
        if not urls:
            raise ConfigError(
                f"{where}: servers is empty; list latency servers, e.g. "
                "hardware.servers=[http://127.0.0.1:8765]"
            )
        self.servers = [parse_server(url) for url in urls]
        if token_file is None:
            raise ConfigError(
                f"{where}: token_file is required: set hardware.token_file=PATH (the token the "
                "servers read with --token-file)"
            )
        self.token_file = token_file
        self._token = read_token(token_file, private=False)
        if format not in FORMATS:
            raise ConfigError(
                f"{where}: format must be one of {', '.join(FORMATS)}, got {format!r}"
            )
        if format == "onnx" and importlib.util.find_spec("onnx") is None:
            raise ConfigError(
                f"{where}: format onnx needs the onnx package on this machine - "
                "pip install corenas[onnx] (or set format: torchscript)"
            )
        self.format = format
        for key, value in (("timeout_s", timeout_s), ("max_model_mb", max_model_mb)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(f"{where}: {key} must be a number > 0, got {value!r}")
        self.timeout_s = float(timeout_s)
        self.max_model_mb = float(max_model_mb)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"{where}: retries must be an integer >= 0, got {retries!r}")
        self.retries = retries
        if on_error not in ON_ERROR:
            raise ConfigError(
                f"{where}: on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}"
            )
        self.on_error = on_error

    def measure(self, model: Any, input_spec: InputSpec) -> HardwareMetrics:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise TrialError(
                "hardware 'remote' measures torch.nn.Module models; this space builds "
                f"{type(model).__name__} - use hardware=none"
            )
        payload = self.export(model, input_spec)
        counted = AnalyticBackend().measure(model, input_spec)
        try:
            remote = self.send(payload, input_spec, shard_key(model))
        except (ServerFailure, AllServersFailed, ModelRejected) as exc:
            if self.on_error == "fail":
                raise TrialError(str(exc)) from None
            counted.extra["remote_fallback"] = 1.0
            return counted
        named = {f.name for f in dataclasses.fields(HardwareMetrics)} - {"extra"}
        figures: dict[str, Any] = {}
        for key, value in remote.items():
            if key in LOCAL_FIELDS:
                continue
            if key in named:
                figures[key] = value
            else:
                counted.extra[key] = value
        return dataclasses.replace(counted, **figures)

    def export(self, model: Any, input_spec: InputSpec) -> bytes:
        """The model file of ``model`` in ``format``, traced in eval mode on one seeded input
        batch of ``input_spec`` (the model's train/eval mode is restored). ``TrialError`` when
        the model cannot be traced or exported."""
        import torch

        from corenas.hardware.cpu import make_input

        example = make_input(input_spec)
        first = next(iter(model.parameters()), None)
        if first is not None:
            example = example.to(first.device)
        buffer = io.BytesIO()
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                if self.format == "torchscript":
                    traced = torch.jit.trace(model, example, check_trace=False, strict=False)
                    torch.jit.save(traced, buffer)
                else:  # the exporter's signature names paths: a private temporary file
                    with tempfile.TemporaryDirectory(prefix="corenas-onnx-") as folder:
                        path = Path(folder) / "model.onnx"
                        torch.onnx.export(model, (example,), str(path), dynamo=False)
                        buffer.write(path.read_bytes())
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            raise TrialError(
                f"hardware 'remote': could not export the model to {self.format}: "
                f"{type(exc).__name__}: {first_line}"
            ) from None
        finally:
            model.train(was_training)
        return buffer.getvalue()

    def server_order(self, key: bytes) -> list[Server]:
        """The servers in the order a model of shard key ``key`` is offered to them: the first
        is ``servers[int(key[:8]) mod len(servers)]``, the rest follow in list order."""
        start = int.from_bytes(key[:8], "big") % len(self.servers)
        return self.servers[start:] + self.servers[:start]

    def send(self, payload: bytes, input_spec: InputSpec, key: bytes) -> dict[str, float]:
        """The metrics a server measured for model file ``payload``, offered to the servers in
        ``server_order(key)``. Raises ``ModelRejected``
        (over ``max_model_mb`` or refused by a server), ``ServerFailure`` (the only server
        failed) or ``AllServersFailed`` (each server's last error, in list order)."""
        size_mb = len(payload) / BYTES_PER_MB
        if size_mb > self.max_model_mb:
            raise ModelRejected(
                f"hardware 'remote': the {self.format} model file is {size_mb:.1f} MB, over "
                f"hardware.max_model_mb={self.max_model_mb:g}"
            )
        order = self.server_order(key)
        failures: dict[str, ServerFailure] = {}
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(RETRY_PAUSE_S)
            for server in order:
                try:
                    return self._post(server, payload, input_spec)
                except ServerFailure as failure:
                    failures[server.url] = failure
        if len(failures) == 1:
            raise next(iter(failures.values()))
        listed = "; ".join(f"{s.url} {failures[s.url].reason}" for s in dict.fromkeys(self.servers))
        raise AllServersFailed(f"all {len(failures)} remote latency servers failed: {listed}")

    def _post(self, server: Server, payload: bytes, input_spec: InputSpec) -> dict[str, float]:
        """POST ``payload`` to ``server``; its metrics, else ``ServerFailure`` or
        ``ModelRejected`` with one line that starts ``remote latency server URL``."""
        query = urlencode(
            {
                "format": self.format,
                "input_shape": ",".join(str(d) for d in input_spec.shape),
                "batch_size": input_spec.batch_size,
                "dtype": input_spec.dtype,
            }
        )
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": "application/octet-stream",
        }
        connection_class = (
            http.client.HTTPSConnection if server.https else http.client.HTTPConnection
        )
        connection = connection_class(server.host, server.port, timeout=self.timeout_s)
        try:
            # a server may refuse the file before reading it all (401, 413): read its answer
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.request("POST", f"{MEASURE_PATH}?{query}", payload, headers)
            response = connection.getresponse()
            status = response.status
            answer = response.read(MAX_ANSWER_BYTES)
        except ConnectionRefusedError:
            raise ServerFailure(
                server.url, "refused the connection - is corenas latency-server running there?"
            ) from None
        except TimeoutError:
            raise ServerFailure(
                server.url,
                f"did not answer within {self.timeout_s:g} s - check the server or "
                "raise hardware.timeout_s",
            ) from None
        except (ConnectionError, http.client.IncompleteRead, http.client.RemoteDisconnected):
            raise ServerFailure(
                server.url, "closed the connection mid-request - did the server die?"
            ) from None
        except http.client.HTTPException as exc:
            raise ServerFailure(
                server.url, f"sent a malformed HTTP answer ({type(exc).__name__})"
            ) from None
        except OSError as exc:
            raise ServerFailure(server.url, f"is unreachable: {exc.strerror or exc}") from None
        finally:
            connection.close()
        try:
            data = json.loads(answer)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ServerFailure(
                server.url,
                f"answered {status} with something that is not corenas JSON - is it a "
                "corenas latency-server?",
            )
        reason = str(data.get("error", "")).strip().replace("\n", " ")
        if status == 401:
            raise ServerFailure(server.url, "rejected the token (401) - check hardware.token_file")
        if status == 413:
            raise ModelRejected(
                f"remote latency server {server.url} refused the model file as too large "
                f"(413): {reason}"
            )
        if status == 400:
            raise ModelRejected(
                f"remote latency server {server.url} rejected the model file (400): {reason}"
            )
        if status == 422:
            raise ModelRejected(
                f"remote latency server {server.url} could not measure the model (422): {reason}"
            )
        if status != 200:
            raise ServerFailure(server.url, f"answered {status}: {reason or 'no reason given'}")
        metrics = data.get("metrics")
        if not isinstance(metrics, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in metrics.values()
        ):
            raise ServerFailure(server.url, "answered 200 without finite numeric metrics")
        return {str(k): float(v) for k, v in metrics.items()}

    def __repr__(self) -> str:
        urls = ", ".join(server.url for server in self.servers)
        return (
            f"RemoteBackend(servers=[{urls}], token_file={self.token_file!r}, "
            f"format={self.format!r}, timeout_s={self.timeout_s:g}, retries={self.retries}, "
            f"on_error={self.on_error!r}, max_model_mb={self.max_model_mb:g})"
        )
