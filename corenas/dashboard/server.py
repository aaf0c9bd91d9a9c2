"""Binding and running the dashboard: loopback by default, anything else only on request and
behind an access token."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from corenas.errors import ConfigError
from corenas.hardware.server import is_loopback

DEFAULT_HOST = "127.0.0.1"
TOKEN_ENV = "CORENAS_DASHBOARD_TOKEN"
MIN_TOKEN_LENGTH = 16


def check_exposure(host: str, allow_remote: bool, token: str | None) -> str | None:
    """The access token the server must require (None on loopback without one).

    A host other than loopback is refused unless ``allow_remote`` and a token of at least
    ``MIN_TOKEN_LENGTH`` characters are both given (``--token`` or ``$CORENAS_DASHBOARD_TOKEN``).
    """
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the access token is {len(token)} characters; use at least {MIN_TOKEN_LENGTH}, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    if is_loopback(host):
        return token
    if not allow_remote:
        raise ConfigError(
            f"--host {host} would expose the dashboard beyond this machine; add --allow-remote "
            f"and an access token (--token or ${TOKEN_ENV}), or keep the default {DEFAULT_HOST}"
        )
    if token is None:
        raise ConfigError(
            f"--allow-remote needs an access token: pass --token TOKEN or set ${TOKEN_ENV} "
            f"(at least {MIN_TOKEN_LENGTH} characters)"
        )
    return token


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); ``ConfigError`` when the
    address cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port "
            "(0 picks a free one)"
        ) from None
    return sock


def url_of(sock: socket.socket, host: str, token: str | None) -> str:
    """The address to open in a browser (with the token, which sets the session cookie)."""
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(app: Any, sock: socket.socket, announce: Callable[[], None]) -> None:
    """Serve ``app`` on ``sock`` until interrupted; ``announce`` runs once it listens."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            announce()

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    _Server(config).run(sockets=[sock])
