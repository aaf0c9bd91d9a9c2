"""The dashboard in a real browser: headless Debian Chromium driven by Selenium through
chromium-driver (nothing is downloaded). Screenshots of each page go to
``test-artifacts/dashboard/`` (or ``$CORENAS_TEST_ARTIFACTS/dashboard``).

Skipped, with the reason, where Chromium, chromium-driver or selenium are missing, unless
``CORENAS_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which makes their absence a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corenas_test_helpers import stored
from dashboard_jobs import HOSTILE, start_dashboard

from corenas.records import SEARCH_STAGE

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 30


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no {CHROMIUM} (apt-get install chromium chromium-driver)"
    if not Path(CHROMEDRIVER).exists():
        return f"no {CHROMEDRIVER} (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def artifacts() -> Path:
    root = Path(os.environ.get("CORENAS_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder = root / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if os.environ.get("CORENAS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="corenas-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """Save the whole page (the window grown to its height) as ``artifacts()/NAME.png``."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(1000, min(int(height) + 20, 4000)))
    path = artifacts() / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path


def wait_for(driver: Any, script: str) -> Any:
    """The first truthy value of ``script`` (JavaScript returning a value), polled."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(
        lambda d: d.execute_script(script)
    )


def table_ids(driver: Any) -> list[int]:
    return [int(i) for i in driver.execute_script(TABLE_IDS)]


TABLE_IDS = "return [...document.querySelectorAll('#trials tbody tr')].map(r => r.dataset.id)"
DRAWN = "return document.body.dataset.drawn"
INKED = """
const canvas = document.getElementById(arguments[0]);
const chart = Chart.getChart(canvas);
if (!chart) return 0;
const points = chart.data.datasets.reduce((n, d) => n + d.data.length, 0);
const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let inked = 0;
for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
return points > 0 && inked > 500 ? points : 0;
"""


def test_job_page_lists_sorts_and_draws(browser, served) -> None:
    key = served.keys["real"]
    trials, _ = stored(served.jobs["real"])
    browser.get(f"{served.url}jobs/{key}")
    wait_for(browser, DRAWN)
    assert table_ids(browser) == [t.id for t in trials]  # every trial, in id order
    rows = browser.execute_script("return document.querySelectorAll('#trials tbody tr').length")
    assert rows == len(trials)
    assert wait_for(browser, "return document.getElementById('table-count').textContent")
    search = [t for t in trials if t.stage == SEARCH_STAGE]
    assert wait_for(browser, INKED.replace("arguments[0]", "'reward-chart'")) == len(search) + len(
        browser.execute_script(
            "return Chart.getChart(document.getElementById('reward-chart')).data.datasets[1].data"
        )
    )
    assert wait_for(browser, INKED.replace("arguments[0]", "'scatter-chart'"))
    assert browser.find_element("id", "stage2-section").is_displayed()
    stage2_rows = browser.execute_script(
        "return document.querySelectorAll('#stage2 tbody tr').length"
    )
    assert stage2_rows == 2
    screenshot(browser, "job")

    header = browser.find_element("css selector", "#trials th[data-column='reward']")
    header.click()  # first click on a metric: best first
    by_reward = sorted(trials, key=lambda t: (-(t.reward or 0.0), t.id))
    wait_for(
        browser,
        "return document.querySelector(\"th[data-column='reward']\").classList.contains('desc')",
    )
    assert [trials_by_id(trials)[i].reward for i in table_ids(browser)] == [
        t.reward for t in by_reward
    ]
    browser.find_element("css selector", "#trials th[data-column='reward']").click()
    wait_for(
        browser,
        "return document.querySelector(\"th[data-column='reward']\").classList.contains('asc')",
    )
    assert [trials_by_id(trials)[i].reward for i in table_ids(browser)] == [
        t.reward for t in reversed(by_reward)
    ]

    browser.find_element("id", "filter").send_keys("accuracy>0.75")
    expected = sorted(
        (t.id for t in trials if t.metrics["accuracy"] > 0.75),
        key=lambda i: trials_by_id(trials)[i].reward or 0.0,
    )
    wait_for(
        browser, f"return document.querySelectorAll('#trials tbody tr').length === {len(expected)}"
    )
    assert sorted(table_ids(browser)) == sorted(expected)


def trials_by_id(trials: list[Any]) -> dict[int, Any]:
    return {t.id: t for t in trials}


def test_trial_page_opens_from_the_table(browser, served) -> None:
    key = served.keys["real"]
    browser.get(f"{served.url}jobs/{key}")
    wait_for(browser, DRAWN)
    browser.find_element("css selector", "#trials tbody tr[data-id='3'] a").click()
    wait_for(
        browser, "return document.body.dataset.page === 'trial' && document.body.dataset.drawn"
    )
    assert browser.find_element("tag name", "h1").text.startswith("Trial 3")
    assert wait_for(browser, INKED.replace("arguments[0]", "'intermediate-chart'")) == 4
    note = wait_for(
        browser,
        "const t = document.getElementById('model-note').textContent;"
        "return t.includes('parameters') ? t : null",
    )
    assert note.startswith("Sequential:")
    assert browser.find_element("id", "model-layers").is_displayed()
    screenshot(browser, "trial")


def test_jobs_page_lists_every_job(browser, served) -> None:
    browser.get(served.url)
    wait_for(browser, "return document.querySelectorAll('#jobs tbody tr').length === 2")
    names = browser.execute_script(
        "return [...document.querySelectorAll('#jobs tbody tr td:first-child')]"
        ".map(c => c.textContent)"
    )
    assert sorted(names) == ["hostile", "real"]
    screenshot(browser, "jobs")


def test_stored_markup_shows_as_text_and_never_runs(browser, served) -> None:
    key = served.keys["hostile"]
    browser.get(f"{served.url}jobs/{key}")
    wait_for(browser, DRAWN)
    errors = browser.execute_script(
        "return [...document.querySelectorAll('#trials td.error')].map(c => c.textContent)"
        ".filter(t => t)"
    )
    assert len(errors) == 4 and all(HOSTILE in text for text in errors)
    genomes = browser.execute_script(
        "return [...document.querySelectorAll('#trials td.genome')].map(c => c.textContent)"
    )
    assert any("<script>" in g for g in genomes)
    assert browser.execute_script("return window.__corenas_xss") is None
    scripts = browser.execute_script("return [...document.scripts].map(s => s.getAttribute('src'))")
    assert scripts == ["/static/chart.umd.min.js", "/static/dashboard.js"]
    screenshot(browser, "hostile-job")

    failed = next(t for t in stored(served.jobs["hostile"])[0] if t.error)
    browser.get(f"{served.url}jobs/{key}/trials/{failed.id}")
    wait_for(browser, "return document.body.dataset.drawn")
    assert HOSTILE in browser.find_element("id", "trial-error").text
    assert HOSTILE.split("</")[0] in browser.find_element("id", "genome").text or (
        '"note"' in browser.find_element("id", "genome").text
    )
    assert browser.execute_script("return window.__corenas_xss") is None
    assert len(browser.execute_script("return document.scripts")) == 2
    screenshot(browser, "hostile-trial")


def test_scatter_axes_and_directions_follow_the_selects(browser, served) -> None:
    from selenium.webdriver.support.ui import Select

    key = served.keys["hostile"]
    front = served.json(f"/api/jobs/{key}/scatter?x=cost:min&y=accuracy:max")["front"]
    browser.get(f"{served.url}jobs/{key}")
    wait_for(browser, DRAWN)
    Select(browser.find_element("id", "scatter-x")).select_by_value("cost")
    Select(browser.find_element("id", "scatter-x-mode")).select_by_value("min")
    Select(browser.find_element("id", "scatter-y")).select_by_value("accuracy")
    wait_for(
        browser,
        "return document.getElementById('scatter-note').textContent"
        ".startsWith('cost min, accuracy max')",
    )
    shown = browser.execute_script(
        "return Chart.getChart(document.getElementById('scatter-chart'))"
        ".data.datasets[1].data.map(p => p.id)"
    )
    assert shown == front and len(front) >= 2


def test_a_running_search_refreshes_live(browser, tmp_path: Path, corenas_process) -> None:
    from corenas_test_helpers import SCRIPTED

    job_dir = tmp_path / "live"
    trials = 10
    search = corenas_process(
        "search",
        *SCRIPTED,
        "+budget.sleep_s=0.8",
        f"search.max_trials={trials}",
        f"job_dir={job_dir}",
        "--no-progress",
    )
    dashboard = None
    try:
        deadline = time.monotonic() + WAIT_S
        while not (job_dir / "corenas.db").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        dashboard, url = start_dashboard(str(job_dir))
        key = json.loads(urllib.request.urlopen(url + "api/jobs", timeout=20).read())[0]["key"]
        browser.get(f"{url}jobs/{key}")
        wait_for(browser, DRAWN)
        first = len(table_ids(browser))
        wait_for(browser, "return !document.getElementById('live').hidden")
        screenshot(browser, "live")
        wait_for(
            browser,
            f"return document.querySelectorAll('#trials tbody tr').length === {trials}"
            " && document.getElementById('job-status').textContent === 'completed'",
        )
        assert first < trials  # the rows came while the page stayed open
        wait_for(browser, "return document.getElementById('live').hidden")
        assert search.wait(timeout=WAIT_S) == 0
    finally:
        for process in (search, dashboard):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
