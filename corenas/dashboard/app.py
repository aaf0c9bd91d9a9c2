"""The dashboard's web application (Starlette): three pages and the JSON they draw from.

Promises: only GET and HEAD are served (anything else is 405) and no handler writes to a
store or the disk or runs anything; every stored string reaches the browser escaped, by
Jinja2's autoescaping in pages and as JSON data that the page script inserts as text (never
as HTML); the Content-Security-Policy allows scripts from the dashboard's own static files
only. With an access token, every request needs it: ``?token=`` once (which sets a cookie
for the browser's session), the cookie, or ``Authorization: Bearer``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from corenas import __version__
from corenas.dashboard.jobs import JobSource, JobView, find_jobs
from corenas.errors import CorenasError
from corenas.plugins import Plugins

TOKEN_COOKIE = "corenas_dashboard_token"
POLL_LIVE_MS = 2000
"""How often a page re-reads a running job."""
POLL_IDLE_MS = 10000
"""How often a page looks for changes of a job that is not running."""
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def package_dir() -> Path:
    return Path(str(resources.files("corenas.dashboard")))


class Jobs:
    """The jobs served: the sources given on the command line, folders re-scanned on each
    listing (a multirun sweep's new jobs appear), one ``JobView`` per job. A job named
    directly (directory or URL) is read at once, so a bad one is refused before serving; one
    found in a folder that cannot be read is listed with the reason."""

    def __init__(self, paths: Sequence[Path], urls: Sequence[str], plugins: Plugins) -> None:
        self.paths = list(paths)
        self.urls = list(urls)
        self.plugins = plugins
        self.views: dict[str, JobView] = {}
        named = {path.resolve() for path in self.paths}
        for source in self.rescan():  # a job named directly must open now; in a folder, later
            if source.url is not None or source.job_dir in named:
                self.views[source.key].snapshot()

    def rescan(self) -> list[JobSource]:
        sources = find_jobs(self.paths, self.urls)
        for source in sources:
            if source.key not in self.views:
                self.views[source.key] = JobView(source, self.plugins)
        return sources

    def view(self, key: str) -> JobView:
        if key not in self.views:
            raise LookupError(f"no job '{key}' is served here")
        return self.views[key]

    def close(self) -> None:
        for view in self.views.values():
            view.close()


def create_app(jobs: Jobs, token: str | None = None) -> Starlette:
    """The application serving ``jobs``; ``token`` (when given) guards every request."""
    templates = Environment(
        loader=FileSystemLoader(str(package_dir() / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    templates.filters["pretty_json"] = _pretty_json

    def page(name: str, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(
            version=__version__, poll_live=POLL_LIVE_MS, poll_idle=POLL_IDLE_MS, **context
        )
        return HTMLResponse(html)

    async def jobs_page(request: Request) -> Response:
        return page("jobs.html", title="corenas jobs")

    async def job_page(request: Request) -> Response:
        view = jobs.view(request.path_params["key"])
        summary = await run_in_threadpool(view.summary)
        return page("job.html", title=f"{summary['name']} · corenas", job=summary)

    async def trial_page(request: Request) -> Response:
        view = jobs.view(request.path_params["key"])
        trial_id = request.path_params["trial_id"]
        summary = await run_in_threadpool(view.summary)
        detail = await run_in_threadpool(view.trial, trial_id)
        return page(
            "trial.html",
            title=f"trial {trial_id} of {summary['name']} · corenas",
            job=summary,
            detail=detail,
        )

    async def api_jobs(request: Request) -> Response:
        def listing() -> list[dict[str, Any]]:
            answers = []
            for source in jobs.rescan():
                try:
                    answers.append(jobs.view(source.key).summary())
                except CorenasError as exc:
                    answers.append({"key": source.key, "label": source.label, "error": str(exc)})
            return answers

        return JSONResponse(await run_in_threadpool(listing))

    def answer(
        compute: Callable[[JobView, Request], Any],
    ) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint answering ``compute(view, request)`` as JSON for the job in the path."""

        async def endpoint(request: Request) -> Response:
            view = jobs.view(request.path_params["key"])
            return JSONResponse(await run_in_threadpool(compute, view, request))

        return endpoint

    def table(view: JobView, request: Request) -> dict[str, Any]:
        q = request.query_params
        return view.table(
            sort=q.get("sort", "id"),
            descending=q.get("order", "asc") == "desc",
            status=q.get("status", ""),
            stage=q.get("stage", ""),
            query=q.get("q", ""),
            offset=_integer(q.get("offset", "0"), "offset"),
            limit=_integer(q.get("limit", "50"), "limit"),
        )

    routes = [
        Route("/", jobs_page),
        Route("/jobs/{key}", job_page),
        Route("/jobs/{key}/trials/{trial_id:int}", trial_page),
        Route("/api/jobs", api_jobs),
        Route("/api/jobs/{key}", answer(lambda view, _: view.summary())),
        Route("/api/jobs/{key}/trials", answer(table)),
        Route(
            "/api/jobs/{key}/trials/{trial_id:int}",
            answer(lambda view, r: view.trial(r.path_params["trial_id"])),
        ),
        Route(
            "/api/jobs/{key}/trials/{trial_id:int}/model",
            answer(lambda view, r: view.model_summary(r.path_params["trial_id"])),
        ),
        Route("/api/jobs/{key}/curve", answer(lambda view, _: view.curve())),
        Route(
            "/api/jobs/{key}/scatter",
            answer(
                lambda view, r: view.scatter(
                    r.query_params.get("x", ""), r.query_params.get("y", "")
                )
            ),
        ),
        Route("/api/jobs/{key}/stage2", answer(lambda view, _: view.stage2())),
        Mount("/static", app=StaticFiles(directory=str(package_dir() / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            LookupError: _not_found,
            KeyError: _not_found,
            CorenasError: _bad_request,
        },
    )
    app.add_middleware(_Guard, token=token)
    return app


def _pretty_json(value: Any) -> str:
    """Indented JSON text, escaped by the template like any other text (not Jinja's
    ``tojson``, which is meant for scripts and shows ``<`` as ``\\u003c``)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _BadParameter(f"{name} must be a whole number, not '{text}'") from None


class _BadParameter(CorenasError):
    pass


async def _not_found(request: Request, exc: Exception) -> Response:
    what = exc.args[0] if exc.args else "not found"
    text = f"no trial {what}" if isinstance(exc, KeyError) else str(what)
    return _error(request, 404, text)


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _error(request, 400, str(exc))


def _error(request: Request, code: int, text: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": text}, status_code=code)
    return PlainTextResponse(f"{code}: {text}", status_code=code)


class _Guard(BaseHTTPMiddleware):
    """Read-only methods, the access token when one is set, and the security headers."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method not in ("GET", "HEAD"):
            response: Response = PlainTextResponse(
                "405: the dashboard is read-only", status_code=405, headers={"Allow": "GET, HEAD"}
            )
        elif self.token is not None and not self._authorised(request):
            response = PlainTextResponse(
                "401: this dashboard needs its access token: open it as /?token=TOKEN",
                status_code=401,
            )
        else:
            response = await call_next(request)
            if self.token is not None and request.query_params.get("token"):
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        for name, value in SECURITY_HEADERS.items():
            if name == "Cache-Control" and request.url.path.startswith("/static/"):
                continue  # the page script and the charting library may be cached
            response.headers.setdefault(name, value)
        return response

    def _authorised(self, request: Request) -> bool:
        assert self.token is not None
        header = request.headers.get("authorization", "")
        offered = [
            request.query_params.get("token", ""),
            request.cookies.get(TOKEN_COOKIE, ""),
            header[7:] if header.lower().startswith("bearer ") else "",
        ]
        return any(o and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)
