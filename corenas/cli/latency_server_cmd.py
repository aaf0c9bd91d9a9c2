"""``corenas latency-server``: measure models sent by the ``remote`` backend on this machine."""

from __future__ import annotations

import argparse
import sys

from corenas.hardware.server import (
    create_server,
    is_loopback,
    parse_settings,
    print_line,
    read_token,
    serve_until_signalled,
)


def run(args: argparse.Namespace) -> int:
    """Check the token file and settings, bind, print the ready line, serve until SIGINT or
    SIGTERM; returns 0 after a clean stop."""
    token = read_token(args.token_file, private=True)
    params = parse_settings(args.set)
    server = create_server(
        args.host, args.port, token, args.backend, params, max_model_mb=args.max_model_mb
    )
    if not is_loopback(args.host):
        print(
            f"corenas latency-server: warning: listening on {args.host}, not loopback: anyone "
            "who reaches this port can try tokens, and traffic (models, token) is not encrypted; "
            "prefer --host 127.0.0.1 behind an SSH tunnel or a TLS reverse proxy",
            file=sys.stderr,
            flush=True,
        )
    serve_until_signalled(
        server,
        on_ready=lambda: print_line(f"latency server on {server.url} (backend {args.backend})"),
    )
    print_line("latency server stopped")
    return 0
