"""The dashboard's JSON and pages, read over HTTP from a real server, and its guards."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from corenas_test_helpers import stored
from dashboard_jobs import HOSTILE, REAL_TRIALS, start_dashboard

from corenas import pareto
from corenas.dashboard.server import check_exposure
from corenas.errors import ConfigError
from corenas.records import TRAIN_STAGE, TrialStatus

pytestmark = pytest.mark.slow


def test_jobs_found_in_a_folder_with_status_and_progress(served) -> None:
    listing = {job["name"]: job for job in served.json("/api/jobs")}
    assert set(listing) == {"real", "hostile"}
    real = listing["real"]
    assert real["status"] == "completed" and not real["live"]
    assert real["search_final"] == real["max_trials"] == REAL_TRIALS
    trials, _ = stored(served.jobs["real"])
    assert real["trials"] == len(trials) and real["stage2"] == 2
    best = max((t for t in trials if t.stage == "search"), key=lambda t: (t.reward or 0.0, -t.id))
    assert real["best"]["id"] == best.id
    assert listing["hostile"]["counts"]["failed"] == 4


def test_table_sorts_filters_and_pages(served) -> None:
    key = served.keys["real"]
    trials, _ = stored(served.jobs["real"])
    page = served.json(f"/api/jobs/{key}/trials?sort=accuracy&order=desc&limit=5")
    expected = sorted(trials, key=lambda t: -t.metrics["accuracy"])
    assert [r["accuracy"] for r in map(lambda r: r["metrics"], page["rows"])] == [
        t.metrics["accuracy"] for t in expected[:5]
    ]
    assert page["matched"] == page["total"] == len(trials)
    assert "accuracy" in page["columns"] and "steps" in page["columns"]  # a column per metric
    second = served.json(f"/api/jobs/{key}/trials?sort=id&offset=5&limit=5")
    assert [r["id"] for r in second["rows"]] == [6, 7, 8, 9, 10]
    above = served.json(f"/api/jobs/{key}/trials?q=accuracy>0.7&limit=500")
    assert {r["id"] for r in above["rows"]} == {t.id for t in trials if t.metrics["accuracy"] > 0.7}
    retrained = served.json(f"/api/jobs/{key}/trials?stage={TRAIN_STAGE}")
    assert [r["parent_id"] is not None for r in retrained["rows"]] == [True, True]
    parents = {r["parent_id"]: r["id"] for r in retrained["rows"]}
    rows = served.json(f"/api/jobs/{key}/trials?limit=500")["rows"]
    assert {r["id"]: [c["id"] for c in r["stage2"]] for r in rows if r["stage2"]} == {
        p: [c] for p, c in parents.items()
    }


def test_table_words_match_genome_and_error_text(served) -> None:
    key = served.keys["hostile"]
    failed = served.json(f"/api/jobs/{key}/trials?status=failed")
    assert failed["matched"] == 4
    assert all(HOSTILE in r["error"] for r in failed["rows"])
    trials, _ = stored(served.jobs["hostile"])
    plain = served.json(f"/api/jobs/{key}/trials?q=PLAIN")  # words ignore case
    assert {r["id"] for r in plain["rows"]} == {t.id for t in trials if t.genome["note"] == "plain"}
    assert 0 < plain["matched"] < len(trials)
    both = served.json(f"/api/jobs/{key}/trials?q=plain+rejected")  # every word must match
    assert {r["id"] for r in both["rows"]} == {
        t.id for t in trials if t.genome["note"] == "plain" and t.status is TrialStatus.FAILED
    }


def test_bad_table_requests_get_one_clear_error(served) -> None:
    key = served.keys["real"]
    for query, fragment in [
        ("sort=colour", "cannot sort by 'colour'"),
        ("status=done", "unknown status 'done'"),
        ("q=accuracy>high", "'high' is not a number"),
        ("limit=many", "limit must be a whole number"),
    ]:
        status, _, body = served.get(f"/api/jobs/{key}/trials?{query}")
        assert status == 400 and fragment in body.decode(), (query, body)
    assert served.get("/api/jobs/nosuchjob/trials")[0] == 404
    assert served.get(f"/api/jobs/{key}/trials/9999")[0] == 404
    assert served.get(f"/jobs/{key}/trials/9999")[0] == 404


def test_reward_curve_has_the_best_so_far(served) -> None:
    curve = served.json(f"/api/jobs/{served.keys['real']}/curve")
    rewards = [p["y"] for p in curve["points"]]
    assert len(rewards) == REAL_TRIALS
    best = [p["y"] for p in curve["best"]]
    assert best == sorted(best) and best[-1] == max(rewards)


def test_scatter_front_is_exactly_the_non_dominated_trials(served) -> None:
    key = served.keys["hostile"]
    default = served.json(f"/api/jobs/{key}/scatter?x=cost&y=accuracy")
    assert default["x"] == {"name": "cost", "mode": "max"}  # as `corenas plot`: an unknown metric
    data = served.json(f"/api/jobs/{key}/scatter?x=cost:min&y=accuracy")
    assert data["x"] == {"name": "cost", "mode": "min"}
    points = {p["id"]: (p["x"], -p["y"]) for p in data["points"]}  # costs to minimise
    front = set(data["front"])
    assert front and len(points) == 8
    for pid, cost in points.items():
        dominated = any(pareto.dominates(other, cost) for other in points.values())
        assert (pid not in front) == dominated


def test_trial_detail_and_model_summary(served) -> None:
    key = served.keys["real"]
    detail = served.json(f"/api/jobs/{key}/trials/3")
    assert [r["step"] for r in detail["intermediate"]] == [1, 2, 3, 4]
    model = served.json(f"/api/jobs/{key}/trials/3/model")
    assert model["available"] and model["params"] > 0 and model["layers"]
    hostile = served.json(f"/api/jobs/{served.keys['hostile']}/trials/1/model")
    assert not hostile["available"] and "builds dict" in hostile["reason"]


def test_pages_escape_stored_markup(served) -> None:
    key = served.keys["hostile"]
    status, headers, body = served.get(f"/jobs/{key}/trials/3")
    html = body.decode()
    assert status == 200
    assert "&lt;script&gt;window.__corenas_xss" in html and HOSTILE not in html
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_nothing_is_written_and_only_reads_are_served(served) -> None:
    job = served.jobs["real"]

    def files() -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(job.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))
        }

    before = files()
    key = served.keys["real"]
    for method_path in ["/api/jobs", f"/api/jobs/{key}/trials", f"/jobs/{key}"]:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            url = served.url + method_path.lstrip("/")
            request = urllib.request.Request(url, method=method)
            try:
                urllib.request.urlopen(request, timeout=10)
                code = 200
            except urllib.error.HTTPError as error:
                code = error.code
            assert code == 405, (method, method_path)
    served.json(f"/api/jobs/{key}/trials?sort=reward")
    assert files() == before


def test_non_loopback_needs_the_flag_and_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORENAS_DASHBOARD_TOKEN", raising=False)
    assert check_exposure("127.0.0.1", False, None) is None
    assert check_exposure("::1", False, None) is None
    token = "t" * 24
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_exposure("0.0.0.0", False, token)
    with pytest.raises(ConfigError, match="needs an access token"):
        check_exposure("0.0.0.0", True, None)
    with pytest.raises(ConfigError, match="at least 16"):
        check_exposure("0.0.0.0", True, "short")
    assert check_exposure("0.0.0.0", True, token) == token
    monkeypatch.setenv("CORENAS_DASHBOARD_TOKEN", token)
    assert check_exposure("192.168.1.5", True, None) == token


def test_cli_refuses_bad_input_with_one_line(jobs, tmp_path: Path, corenas) -> None:
    for args, fragment in [
        (["--host", "0.0.0.0", str(jobs["real"])], "--allow-remote"),
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(tmp_path)], "holds no corenas job"),
        ([], "name what to show"),
        (["--storage", f"sqlite:///{tmp_path}/none.db"], "no store file"),
    ]:
        result = corenas("dashboard", *args, "--port", "0")
        assert result.returncode != 0, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr


def test_a_token_guards_every_request(jobs) -> None:
    token = "a-long-enough-token-1234"
    process, url = start_dashboard(str(jobs["real"]), "--token", token)
    try:

        def status(path: str, **headers: str) -> tuple[int, str]:
            request = urllib.request.Request(url.split("?")[0] + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=20) as response:
                    return response.status, response.headers.get("set-cookie", "")
            except urllib.error.HTTPError as error:
                return error.code, ""

        assert "?token=" in url
        assert status("api/jobs")[0] == 401
        assert status("static/dashboard.js")[0] == 401
        assert status("api/jobs?token=wrong-token-wrong-token")[0] == 401
        code, cookie = status(f"?token={token}")
        assert code == 200 and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert status("api/jobs", Cookie=f"corenas_dashboard_token={token}")[0] == 200
        assert status("api/jobs", Authorization=f"Bearer {token}")[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_storage_url_serves_the_job(jobs) -> None:
    url_of_store = f"sqlite:///{jobs['hostile'] / 'corenas.db'}"
    process, url = start_dashboard("--storage", url_of_store)
    try:
        listing = json.loads(urllib.request.urlopen(url + "api/jobs", timeout=20).read())
        assert [j["name"] for j in listing] == ["hostile"]
        assert listing[0]["counts"][TrialStatus.FAILED.value] == 4
    finally:
        process.terminate()
        process.wait(timeout=30)
