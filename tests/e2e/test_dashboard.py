"""The dashboard in a real browser (Debian's chromium, driven through its
chromedriver by selenium), against the real pipeline while the replay tool
streams the REES46 sample: the plotted values equal /aggregates for the same
range and filter, a new bucket appears as the stream advances, and a profile
lookup shows a known cookie's tags. Screenshots are saved as test artifacts
(ALLEZON_TEST_ARTIFACTS_DIR, default test-artifacts/).
"""

from __future__ import annotations

import asyncio
import calendar
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from harness.local_stack.flink import rest_url
from harness.replay.rees46 import Rees46Source
from harness.replay.runner import Runner, RunnerConfig
from tests.e2e.conftest import api_service
from tests.settings import TestSettings

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "rees46-2019-10-head.csv"
# The sample's first hour of event time (about 6,000 tags): at this rate a new bucket every second or so.
TAGS = 6_000
RATE = 150


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.5) -> Any:
    """The first truthy value of `check()`; fails the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s (last: {value!r})")
        time.sleep(interval_s)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, "chromium and chromedriver are installed by `make prereqs` (scripts/check_prereqs.sh)"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--disable-gpu", "--no-first-run"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.set_script_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def artifacts(request) -> Path:
    where = TestSettings().test_artifacts_dir / request.node.name
    where.mkdir(parents=True, exist_ok=True)
    return where


class Streaming(threading.Thread):
    """The replay tool streaming the sample through the ingest API, in the background."""

    def __init__(self, source: Rees46Source, ingest_url: str, query_url: str):
        super().__init__(name="replay", daemon=True)
        self.source, self.ingest_url, self.query_url = source, ingest_url, query_url
        self.error: BaseException | None = None

    def run(self) -> None:
        async def go() -> None:
            config = RunnerConfig(base_url=self.ingest_url, query_url=self.query_url, progress=False, seed=46)
            async with Runner(self.source, config) as runner:
                await runner.run_phase(RATE, tags=self.source.total, name="stream")

        try:
            asyncio.run(go())
        except BaseException as exc:  # reported by the test
            self.error = exc


def page_state(browser) -> dict:
    """What the page plots, read in one script so that query and data belong together."""
    state: dict = browser.execute_script("""
        const d = window.dashboard;
        return {query: d.query, newest: document.getElementById('newest').dataset.bucket || null,
                data: d.chart ? d.chart.data.map((series) => Array.from(series)) : null};
    """)
    return state


def bucket_seconds(label: str) -> int:
    return calendar.timegm(time.strptime(label, "%Y-%m-%dT%H:%M:%S"))


def api_series(query_client: httpx.Client, query: str) -> list[list[float]]:
    """/aggregates for the page's query, as the chart's series: [bucket seconds, COUNT, SUM_PRICE]."""
    answer = query_client.get(f"/aggregates?{query}").raise_for_status().json()
    count, total = answer["columns"].index("count"), answer["columns"].index("sum_price")
    seconds = [bucket_seconds(row[0]) for row in answer["rows"]]
    return [seconds, [int(row[count]) for row in answer["rows"]], [int(row[total]) for row in answer["rows"]]]


@pytest.fixture
def dashboard_query(backends, flink_cluster, fresh_keyspace, ingest_url, tmp_path) -> Iterator[httpx.Client]:
    """The query API as a real process, reading the test's ingest metrics and Flink cluster for /pipeline."""
    env = {
        "CASSANDRA_CONTACT_POINTS": ",".join(backends.cassandra_hosts),
        "CASSANDRA_PORT": str(backends.cassandra_port),
        "CASSANDRA_KEYSPACE": fresh_keyspace,
        "QUERY_INGEST_METRICS_URL": f"{ingest_url}/metrics",
        "QUERY_FLINK_REST_URL": rest_url(flink_cluster.settings),
    }
    with api_service("query_api", env, tmp_path / "query-api.log") as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


def test_dashboard_plots_the_api_answers_follows_the_stream_and_looks_up_profiles(
        start_stream_job, ingest_url, dashboard_query, fresh_topic, fresh_keyspace, browser, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    query_client = dashboard_query
    start_stream_job(fresh_topic, fresh_keyspace)
    source = Rees46Source(DATA, limit=TAGS)
    streaming = Streaming(source, ingest_url, str(query_client.base_url))
    streaming.start()

    browser.get(f"{query_client.base_url}/dashboard")
    first = wait_for(lambda: page_state(browser)["newest"], 180, "a first bucket on the page")
    # The pipeline's health, from the components' own metrics through /pipeline.
    wait_for(lambda: browser.find_element(By.ID, "job").text.endswith("RUNNING"), 30, "the job's state")
    wait_for(lambda: browser.find_element(By.ID, "accepted").text.split("/s")[0].strip().isdigit(), 30,
             "a rate of accepted tags")
    browser.save_screenshot(str(artifacts / "1-first-bucket.png"))
    # The stream advances in event time: the page follows its newest bucket, and plots it.
    newer = wait_for(lambda: (n := page_state(browser)["newest"]) and n > first and n, 120,
                     f"a bucket after {first}")
    newer_s = bucket_seconds(newer)
    wait_for(lambda: (data := page_state(browser)["data"]) and data[0] and data[0][-1] == newer_s, 30,
             f"the chart ending with bucket {newer}")

    # A range and a filter: the last hour of one origin, picked from the values seen.
    form = browser.find_element(By.ID, "query")
    Select(form.find_element(By.NAME, "range")).select_by_value("60")
    origins = wait_for(lambda: [o.get_attribute("value") for o in
                                form.find_element(By.NAME, "origin").find_elements(By.TAG_NAME, "option")][1:],
                       60, "origins offered from the values seen")
    Select(form.find_element(By.NAME, "origin")).select_by_value(origins[0])
    wait_for(lambda: "origin=" in (page_state(browser)["query"] or ""), 30, "the filtered query")

    streaming.join(timeout=300)
    assert not streaming.is_alive(), "the replay did not finish"
    assert streaming.error is None, repr(streaming.error)

    # Once the stream is still, what the page plots is what /aggregates answers for its query.
    def plotted_equals_api() -> dict | None:
        state = page_state(browser)
        return state if state["data"] and state["data"] == api_series(query_client, state["query"]) else None

    state = wait_for(plotted_equals_api, 60, "the plotted values equal to /aggregates")
    asked = parse_qs(state["query"])
    assert asked["origin"] == [origins[0]] and asked["action"] == ["VIEW"], asked
    assert len(state["data"][0]) == 60 and sum(state["data"][1]) > 0, state
    browser.save_screenshot(str(artifacts / "2-filtered-hour.png"))

    # A profile lookup shows the cookie's tags, as /user_profiles answers them.
    cookie = source.tag(0)["cookie"]
    lookup = browser.find_element(By.ID, "lookup")
    lookup.find_element(By.NAME, "cookie").send_keys(cookie)
    lookup.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: browser.execute_script("return document.getElementById('profile').dataset.cookie") == cookie,
             30, "the profile of the first cookie")
    profile = query_client.get(f"/user_profiles/{cookie}",
                               params={"time_range": "2000-01-01T00:00:00_2100-01-01T00:00:00"}).json()
    shown = {action: len(browser.find_elements(By.CSS_SELECTOR, f"#profile table[data-action={action}] tbody tr"))
             for action in ("VIEW", "BUY")}
    assert shown == {"VIEW": len(profile["views"]), "BUY": len(profile["buys"])}
    assert shown["VIEW"] + shown["BUY"] > 0
    browser.save_screenshot(str(artifacts / "3-profile.png"))
    print(f"\ndashboard screenshots in {artifacts}")
