"""``corenas dashboard``: serve jobs as a local, read-only web application."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from corenas.dashboard.server import bind, check_exposure, serve, url_of
from corenas.errors import ConfigError
from corenas.plugins import get_plugins

EXTRA_HINT = "pip install 'corenas[dashboard]'"


def run(args: argparse.Namespace) -> int:
    """Check every job and the address first, then serve until Ctrl-C; prints the address
    (``--port 0`` picks a free port) as soon as the server listens."""
    if not args.job_dirs and not args.storage:
        raise ConfigError(
            "name what to show: job directories or folders of jobs (JOB_DIR ...), or --storage URL"
        )
    token = check_exposure(args.host, args.allow_remote, args.token)
    try:
        from corenas.dashboard.app import Jobs, create_app
    except ImportError as exc:
        raise ConfigError(f"the dashboard needs {exc.name}: {EXTRA_HINT}") from None
    jobs = Jobs([Path(p) for p in args.job_dirs], args.storage or [], get_plugins())
    sock = bind(args.host, args.port)
    app = create_app(jobs, token=token)
    url = url_of(sock, args.host, token)

    def announce() -> None:
        count = len(jobs.views)
        print(
            f"corenas dashboard: {count} job{'s' if count != 1 else ''} at {url} (Ctrl-C stops)",
            flush=True,
        )

    try:
        serve(app, sock, announce)
    finally:
        jobs.close()
        sock.close()
    print("corenas dashboard: stopped", file=sys.stderr)
    return 0
