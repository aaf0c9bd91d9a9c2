"""The latency server: measures models sent over HTTP with a hardware backend configured on the
machine it runs on (``corenas latency-server``), for the ``remote`` backend of a search.

Protocol (HTTP/1.0, one request per connection, JSON answers):

- ``POST /measure?format=torchscript|onnx&input_shape=C,H,W&batch_size=N&dtype=float32`` with
  the model file as the body: ``200 {"metrics": {...}}``, else ``{"error": "<one line>"}`` with
  401 (missing or wrong token), 400 (bad parameters or a file that is not a model), 411 (no
  Content-Length), 413 (file over the size limit; refused before the body is read), 422 (the
  backend failed on the model) or 500.
- ``GET /health``: ``200`` with the backend, its parameters, the torch version, the device and
  whether a measurement is running.

Every request needs ``Authorization: Bearer <token>``. Models are loaded with
``torch.jit.load`` (TorchScript) or onnxruntime (ONNX); nothing is unpickled. Measurements run
one at a time. This module imports torch only when it measures.
"""

from __future__ import annotations

import hmac
import io
import ipaddress
import json
import os
import platform
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from corenas.errors import ConfigError, TrialError

MEASURE_PATH = "/measure"
HEALTH_PATH = "/health"
FORMATS = ("torchscript", "onnx")
"""Model file formats a server accepts (``onnx`` only where onnxruntime is installed)."""
DTYPES = (
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
)
"""Input dtypes a measure request may name."""
DEFAULT_PORT = 8765
DEFAULT_MAX_MODEL_MB = 200.0
BYTES_PER_MB = 2**20
MIN_TOKEN_CHARS = 16
MAX_INPUT_ELEMENTS = 2**27
"""Largest input batch (elements) a request may ask for: 512 MiB of float32."""
SOCKET_TIMEOUT_S = 60.0
"""Longest the server waits on one read from or write to a client."""
LINGER_S = 2.0
"""After refusing a request before reading its body, how long the server goes on reading and
discarding what the client still sends, so that the client can read the refusal."""
TOKEN_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(32))" > FILE; chmod 600 FILE'


def read_token(path: str | os.PathLike[str], private: bool) -> str:
    """The token in file ``path`` (``~`` expanded; surrounding whitespace stripped).

    Raises ``ConfigError`` when the file is missing or unreadable, the token is empty, shorter
    than ``MIN_TOKEN_CHARS`` or not printable ASCII without spaces, and, with ``private`` on
    POSIX, when group or others have any access to the file.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"token file '{file}' does not exist; create it with: {TOKEN_HINT}")
    if private and os.name == "posix":
        mode = stat.S_IMODE(file.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"token file '{file}' is accessible to group or others (mode {mode:o}); "
                f"make it private with: chmod 600 {file}"
            )
    try:
        token = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"token file '{file}' cannot be read: {exc}") from None
    if not token:
        raise ConfigError(f"token file '{file}' is empty; write a token into it with: {TOKEN_HINT}")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise ConfigError(
            f"token in '{file}' must be printable ASCII without spaces; make one with: {TOKEN_HINT}"
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"token in '{file}' has {len(token)} characters, fewer than {MIN_TOKEN_CHARS}; "
            f"make a longer one with: {TOKEN_HINT}"
        )
    return token


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict; each VALUE parsed as a YAML scalar (``1``, ``0.5``,
    ``null``, ``true``), else kept as text. ``ConfigError`` for an item without ``=``."""
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"malformed --set '{item}': write KEY=VALUE, e.g. --set threads=1")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            value = text
        params[key.strip()] = value
    return params


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def device_description(device: str) -> str:
    """One line naming ``device`` (``cpu`` or ``cuda:N``) of this machine."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            index = int(device.partition(":")[2] or 0)
            return f"{device}: {torch.cuda.get_device_name(index)}"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"cpu: {model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


def onnxruntime_available() -> bool:
    """Whether this machine can measure ONNX files (onnxruntime imports)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _first_sentence(text: str, limit: int = 200) -> str:
    line = (text.strip().splitlines() or [""])[0]
    sentence = line.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= limit else sentence[: limit - 3] + "..."


@dataclass(frozen=True)
class MeasureRequest:
    """The parameters of one ``POST /measure``."""

    format: str
    input_shape: tuple[int, ...]
    batch_size: int
    dtype: str

    def describe(self) -> str:
        shape = "x".join(str(d) for d in (self.batch_size, *self.input_shape))
        return f"{self.format} {shape} {self.dtype}"


class Rejected(Exception):
    """A request refused with HTTP ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_measure_query(query: str) -> MeasureRequest:
    """The parameters of a measure request's query string; ``Rejected(400)`` for unknown,
    repeated or invalid ones."""
    allowed = ("format", "input_shape", "batch_size", "dtype")
    values: dict[str, str] = {}
    for key, items in parse_qs(query, keep_blank_values=True).items():
        if key not in allowed:
            raise Rejected(400, f"unknown parameter '{key}'; allowed: {', '.join(allowed)}")
        if len(items) != 1:
            raise Rejected(400, f"parameter '{key}' given {len(items)} times")
        values[key] = items[0]
    fmt = values.get("format", "torchscript")
    if fmt not in FORMATS:
        raise Rejected(400, f"format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if "input_shape" not in values:
        raise Rejected(400, "parameter 'input_shape' is required, e.g. input_shape=3,32,32")
    try:
        shape = tuple(int(d) for d in values["input_shape"].split(","))
        batch = int(values.get("batch_size", "1"))
    except ValueError:
        raise Rejected(
            400, "input_shape must be comma-separated integers and batch_size an integer"
        ) from None
    if not 1 <= len(shape) <= 8 or min(shape) < 1 or batch < 1:
        raise Rejected(400, "input_shape needs 1 to 8 sizes >= 1 and batch_size must be >= 1")
    elements = batch
    for size in shape:
        elements *= size
    if elements > MAX_INPUT_ELEMENTS:
        raise Rejected(
            400, f"an input of {elements} elements is over this server's {MAX_INPUT_ELEMENTS}"
        )
    dtype = values.get("dtype", "float32")
    if dtype not in DTYPES:
        raise Rejected(400, f"dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
    return MeasureRequest(fmt, shape, batch, dtype)


def load_model(body: bytes, fmt: str, threads: int | None = None) -> Any:
    """The torch module in model file ``body``: a TorchScript archive (``torch.jit.load`` on CPU)
    or an ONNX file run by an onnxruntime CPU session (``threads`` intra-op threads, None: its
    default) behind a torch module. ``Rejected(400)`` when the file is not one or ONNX is asked
    for without onnxruntime."""
    import torch

    if fmt == "torchscript":
        try:
            return torch.jit.load(io.BytesIO(body), map_location="cpu")
        except Exception as exc:
            raise Rejected(400, f"not a TorchScript archive: {_first_sentence(str(exc))}") from None
    try:
        import onnxruntime
    except ImportError:
        raise Rejected(
            400,
            "this server cannot measure ONNX files: onnxruntime is not installed there "
            "(pip install onnxruntime), or send format=torchscript",
        ) from None
    try:
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(body, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise Rejected(400, f"not an ONNX model: {_first_sentence(str(exc))}") from None

    class OnnxModule(torch.nn.Module):
        """Runs the ONNX session on the first output; timed like any torch module."""

        def __init__(self) -> None:
            super().__init__()
            self.input_name = session.get_inputs()[0].name

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            outputs = session.run(None, {self.input_name: x.detach().cpu().numpy()})
            return torch.from_numpy(outputs[0])

    return OnnxModule()


class LatencyServer(ThreadingHTTPServer):
    """Answers measure and health requests with ``backend``; measurements run one at a time.

    ``log`` gets one line per request."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        token: str,
        backend: Any,
        backend_name: str,
        backend_params: dict[str, Any],
        max_model_mb: float,
        log: Callable[[str], None],
    ) -> None:
        super().__init__(address, _Handler)
        self.token = token.encode("ascii")
        self.backend = backend
        self.backend_name = backend_name
        self.backend_params = dict(backend_params)
        self.max_model_bytes = int(max_model_mb * BYTES_PER_MB)
        self.max_model_mb = max_model_mb
        self.log = log
        self.measure_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def health(self) -> dict[str, Any]:
        import torch

        from corenas import __version__

        formats = ["torchscript", *(["onnx"] if onnxruntime_available() else [])]
        return {
            "backend": self.backend_name,
            "backend_params": self.backend_params,
            "backend_repr": repr(self.backend),
            "device": device_description(str(getattr(self.backend, "device", "cpu"))),
            "torch": torch.__version__,
            "corenas": __version__,
            "python": platform.python_version(),
            "formats": formats,
            "max_model_mb": self.max_model_mb,
            "busy": self.measure_lock.locked(),
        }

    def measure(self, body: bytes, request: MeasureRequest) -> dict[str, float]:
        """The backend's metrics of model file ``body``; ``Rejected`` 400 (not a model), 422
        (the backend's ``TrialError``) or 500 (anything else)."""
        from corenas.hardware.base import InputSpec

        threads = getattr(self.backend, "threads", None)
        model = load_model(body, request.format, threads if isinstance(threads, int) else None)
        spec = InputSpec(request.input_shape, request.batch_size, request.dtype)
        with self.measure_lock:
            try:
                measured = self.backend.measure(model, spec)
            except TrialError as exc:
                raise Rejected(422, _first_sentence(str(exc), limit=500)) from None
            except Exception as exc:
                raise Rejected(500, f"{type(exc).__name__}: {_first_sentence(str(exc))}") from None
        metrics = {key: float(value) for key, value in measured.as_metrics().items()}
        if request.format == "onnx":  # torch sees neither the session's weights nor its memory
            metrics["model_size_mb"] = len(body) / BYTES_PER_MB
            metrics.pop("memory_mb", None)
        return metrics


class _Handler(BaseHTTPRequestHandler):
    server: LatencyServer
    timeout = SOCKET_TIMEOUT_S
    server_version = "corenas-latency-server"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged once, by ``_log``."""

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log(f"{self.client_address[0]} {format % args}")

    def do_GET(self) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path
        status, detail = 200, ""
        try:
            self._check_token()
            if path != HEALTH_PATH:
                raise Rejected(404, f"no such endpoint {path}; use GET {HEALTH_PATH}")
            self._send_json(200, self.server.health())
        except Rejected as rejected:
            status, detail = rejected.status, rejected.message
            self._refuse_unread(rejected)
        self._log(status, detail, started)

    def do_POST(self) -> None:
        started = time.monotonic()
        status, detail = 200, ""
        try:
            url = urlsplit(self.path)
            self._check_token()
            if url.path != MEASURE_PATH:
                raise Rejected(404, f"no such endpoint {url.path}; use POST {MEASURE_PATH}")
            request = parse_measure_query(url.query)
            detail = request.describe()
            length = self._content_length()
        except Rejected as rejected:
            status, detail = rejected.status, rejected.message
            self._refuse_unread(rejected)
            self._log(status, detail, started)
            return
        try:
            body = self.rfile.read(length)
            if len(body) < length:
                raise Rejected(400, f"incomplete model file: {len(body)} of {length} bytes")
            metrics = self.server.measure(body, request)
            latency = metrics.get("latency_ms")
            if latency is not None:
                detail += f" latency_ms={latency:.4g}"
            self._send_json(200, {"metrics": metrics})
        except Rejected as rejected:
            status, detail = rejected.status, f"{detail}: {rejected.message}"
            self._send_json(rejected.status, {"error": rejected.message})
        except OSError as exc:  # the client went away or stalled
            status, detail = 400, f"{detail}: connection lost: {type(exc).__name__}"
            self.close_connection = True
        self._log(status, detail, started)

    def _check_token(self) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), self.server.token
        )
        if not valid:
            raise Rejected(401, "missing or wrong token (send Authorization: Bearer TOKEN)")

    def _content_length(self) -> int:
        text = self.headers.get("Content-Length")
        if text is None:
            raise Rejected(411, "Content-Length is required")
        try:
            length = int(text)
        except ValueError:
            raise Rejected(400, f"Content-Length must be an integer, got '{text}'") from None
        if length < 0:
            raise Rejected(400, f"Content-Length must be >= 0, got {length}")
        if length == 0:
            raise Rejected(400, "the request has no model file in its body")
        if length > self.server.max_model_bytes:
            raise Rejected(
                413,
                f"model file of {length / BYTES_PER_MB:.1f} MB is over this server's limit of "
                f"{self.server.max_model_mb:g} MB (latency-server --max-model-mb)",
            )
        return length

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _refuse_unread(self, rejected: Rejected) -> None:
        """Answer ``rejected`` without reading the body, then read and discard what the client
        still sends for up to ``LINGER_S`` so that closing does not reset the connection
        before the client has read the answer."""
        self._send_json(rejected.status, {"error": rejected.message})
        self.close_connection = True
        if self.command != "POST":
            return
        deadline = time.monotonic() + LINGER_S
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(1 << 16):
                    break
        except OSError:
            pass

    def _log(self, status: int, detail: str, started: float) -> None:
        path = urlsplit(self.path).path
        elapsed = time.monotonic() - started
        text = f" {detail}" if detail else ""
        self.server.log(
            f"{self.client_address[0]} {self.command} {path} {status}{text} ({elapsed:.2f} s)"
        )


def print_line(text: str) -> None:
    """Write one line to stdout at once (log lines of concurrent requests do not interleave)."""
    with _PRINT_LOCK:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


_PRINT_LOCK = threading.Lock()


def create_server(
    host: str,
    port: int,
    token: str,
    backend_name: str,
    backend_params: dict[str, Any],
    max_model_mb: float = DEFAULT_MAX_MODEL_MB,
    log: Callable[[str], None] = print_line,
) -> LatencyServer:
    """A bound (not yet serving) latency server measuring with hardware backend
    ``backend_name`` built from ``backend_params``; port 0 picks a free port.

    Raises ``ConfigError`` for an unknown backend or bad parameters, ``remote`` as the
    backend, a size limit <= 0, or an address it cannot listen on."""
    from corenas.plugins import get_plugins

    if backend_name == "remote":
        raise ConfigError(
            "a latency server measures on its own machine: --backend remote would forward to "
            "another server; use a local backend such as cpu"
        )
    if not max_model_mb > 0:
        raise ConfigError(f"--max-model-mb must be > 0, got {max_model_mb:g}")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {port}")
    backend = get_plugins().registry("hardware").create(backend_name, **backend_params)
    import torch.utils.flop_counter  # noqa: F401  (the MAC counter: imported now, not mid-request)

    try:
        return LatencyServer(
            (host, port), token, backend, backend_name, backend_params, max_model_mb, log
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} - pick another --port or --host"
        ) from None


def serve_until_signalled(
    server: LatencyServer, on_ready: Callable[[], None] = lambda: None
) -> None:
    """Serve until SIGINT or SIGTERM, then stop accepting, close the socket and return
    (a measurement in progress is abandoned). ``on_ready`` runs once the signal handlers are
    installed and the server accepts requests."""
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    thread = threading.Thread(target=server.serve_forever, name="latency-server", daemon=True)
    thread.start()
    on_ready()
    try:
        while not stop.wait(0.5):
            if not thread.is_alive():
                break
    finally:
        server.shutdown()
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
