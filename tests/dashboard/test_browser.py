"""The dashboard in a real browser (headless Debian Chromium driven by Selenium), served by
uvicorn on 127.0.0.1 against real SQLite stores: list, filter, open a job; pause and resume a
job of an app running in another process and see the app honour it; cancel; read-only;
the token; arguments holding ``<script>`` shown as text.

Without Chromium these tests skip with a message saying how to get it; under ``CI=true``
they fail instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from .browser import RunningApp, Served, require_chromium, start_browser
from .conftest import SCRIPT, TOKEN, Store, record

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")  # the driver's sockets


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_chromium()
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(store: Store) -> Iterator[list[Served]]:
    """Dashboards started by a test (each stopped after it)."""
    started: list[Served] = []
    yield started
    for server in started:
        server.stop()


def serve(started: list[Served], url: str, **options: Any) -> str:
    server = Served(url, **options).start()
    started.append(server)
    return server.base


def by_css(browser: Any, selector: str, timeout: float = 5.0) -> Any:
    """The element, once the page has it (a page loading after a click may not yet)."""

    wait = WebDriverWait(browser, timeout)
    return wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))


def eventually(browser: Any, check: Any, timeout: float, what: str) -> None:
    """Wait until ``check()`` is true; an element replaced under it (a page loading, a live
    refresh) just means "not yet"."""

    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        WebDriverWait(browser, timeout, 0.05, ignored).until(lambda _: check())
    except TimeoutException:
        raise AssertionError(f"not within {timeout}s: {what}") from None


def all_css(browser: Any, selector: str) -> list[Any]:

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def job_ids(browser: Any) -> list[str]:
    return [row.get_attribute("data-job-id") for row in all_css(browser, "tr.job")]


def click_action(browser: Any, action: str, *, accept: bool = True) -> str:
    """Click an action button and answer the browser's confirmation; return its text."""

    by_css(browser, f'button[data-action="{action}"]').click()
    alert = WebDriverWait(browser, 5).until(lambda b: b.switch_to.alert)
    question: str = alert.text
    if accept:
        alert.accept()
    else:
        alert.dismiss()
    return question


def refreshes(browser: Any) -> int:
    """How many times the page's script has refreshed its live part."""
    return int(by_css(browser, "body").get_attribute("data-refreshed") or 0)


def no_alert(browser: Any) -> bool:

    try:
        browser.switch_to.alert  # noqa: B018
    except NoAlertPresentException:
        return True
    return False


def test_list_filter_and_open_a_job(browser: Any, served: list[Served], store: Store) -> None:

    base = serve(served, store.url, refresh_seconds=0)
    browser.get(base + "/jobs")
    assert browser.title == "Jobs · jobify"
    ids = job_ids(browser)
    assert len(ids) == 50 and ids[:2] == [store.static_cron_id, store.cron_id]
    # Choosing a status applies the filter at once (the page's script submits the form).
    Select(by_css(browser, "#filter-status")).select_by_value("paused")
    eventually(browser, lambda: "status=paused" in browser.current_url, 5, "the status filter")
    assert job_ids(browser) == [store.paused_id]
    browser.get(base + "/jobs")
    field = by_css(browser, "#filter-task")
    field.send_keys("bulk")
    field.submit()
    eventually(browser, lambda: "task=bulk" in browser.current_url, 5, "the task filter")
    assert job_ids(browser)[:2] == ["bulk-000", "bulk-001"]
    by_css(browser, 'a[rel="next"]').click()
    eventually(browser, lambda: "page=2" in browser.current_url, 5, "the next page")
    assert job_ids(browser)[0] == "bulk-050"
    # Open a job.
    browser.get(base + "/jobs")
    by_css(browser, f'a.job-id[href="/jobs/{store.cron_id}"]').click()
    eventually(
        browser, lambda: browser.current_url.endswith(f"/jobs/{store.cron_id}"), 5, "the job"
    )
    assert by_css(browser, "#job-id").text == store.cron_id
    assert "team@example.com" in by_css(browser, "#arguments").text
    assert len(all_css(browser, "#next-fires li")) == 10
    assert "ConnectionError" in browser.page_source


def test_pause_and_resume_reach_a_running_app(
    browser: Any, served: list[Served], tmp_path: Path
) -> None:
    app = RunningApp(tmp_path).start()
    try:
        base = serve(served, app.url, refresh_seconds=1)
        app.wait_for_runs(2, timeout=10)
        browser.get(base + "/jobs/tick")
        assert "scheduled" in by_css(browser, "#job-status").text
        question = click_action(browser, "pause")
        assert question.startswith("Pause job 'tick'?")
        eventually(browser, lambda: "paused" in by_css(browser, "#job-status").text, 10, "paused")
        assert "done by the running app" in by_css(browser, "#flash").text
        paused_at = len(app.runs)
        # Paused: the app stops running it (a run already started may still finish).
        time.sleep(2.5)
        assert len(app.runs) <= paused_at + 1, "the app kept running a paused job"
        click_action(browser, "resume")
        eventually(
            browser, lambda: "scheduled" in by_css(browser, "#job-status").text, 10, "resumed"
        )
        app.wait_for_runs(len(app.runs) + 2, timeout=10)
        # The page shows the new runs by itself, without reloading (the marker survives).
        browser.execute_script("window.__still_here = true;")
        rows, refreshed = len(all_css(browser, "tr.run")), refreshes(browser)
        eventually(
            browser,
            lambda: refreshes(browser) > refreshed and len(all_css(browser, "tr.run")) > rows,
            10,
            "new runs shown by the live refresh",
        )
        assert browser.execute_script("return window.__still_here === true;") is True
    finally:
        err = app.stop()
    assert "Traceback" not in err, err


def test_cancel_after_confirmation(browser: Any, served: list[Served], store: Store) -> None:
    base = serve(served, store.url, refresh_seconds=0)
    browser.get(base + f"/jobs/{store.once_id}")
    click_action(browser, "cancel", accept=False)  # changed my mind: nothing happens
    assert browser.current_url.endswith(f"/jobs/{store.once_id}")
    assert record(store, store.once_id) is not None
    question = click_action(browser, "cancel")
    assert "never runs again" in question
    eventually(browser, lambda: browser.current_url == base + "/jobs", 10, "back to the list")
    assert "cancelled" in by_css(browser, "#flash").text
    assert record(store, store.once_id) is None
    assert store.once_id not in job_ids(browser)


def test_read_only_shows_no_actions(browser: Any, served: list[Served], store: Store) -> None:
    base = serve(served, store.url, read_only=True, refresh_seconds=0)
    browser.get(base + f"/jobs/{store.cron_id}")
    assert all_css(browser, "button[data-action]") == []
    assert "read-only" in by_css(browser, "header.top").text
    # Even a request made by hand is refused.
    status = browser.execute_script(
        "return fetch(arguments[0], {method: 'POST'}).then(r => r.status);",
        base + f"/api/jobs/{store.cron_id}/pause",
    )
    assert status == 403
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "scheduled"


def test_actions_need_the_token(browser: Any, served: list[Served], store: Store) -> None:
    base = serve(served, store.url, auth_token=TOKEN, refresh_seconds=0)
    browser.get(base + f"/jobs/{store.cron_id}")
    assert all_css(browser, "button[data-action]") == []
    by_css(browser, "#login-link").click()
    eventually(browser, lambda: "/login" in browser.current_url, 5, "the login form")
    by_css(browser, "#token").send_keys("not-the-token")
    by_css(browser, "form.login").submit()
    eventually(browser, lambda: all_css(browser, "#login-message"), 5, "the answer")
    assert by_css(browser, "#login-message").text == "Wrong token."
    by_css(browser, "#token").send_keys(TOKEN)
    by_css(browser, "form.login").submit()
    eventually(browser, lambda: browser.current_url.endswith(f"/jobs/{store.cron_id}"), 5, "back")
    click_action(browser, "pause")
    eventually(browser, lambda: "paused" in by_css(browser, "#job-status").text, 10, "paused")
    stored = record(store, store.cron_id)
    assert stored is not None and stored.status == "paused"
    browser.delete_all_cookies()


def test_script_in_arguments_is_shown_as_text(
    browser: Any, served: list[Served], store: Store
) -> None:
    base = serve(served, store.url, refresh_seconds=1)
    browser.get(base + "/jobs/" + quote(store.hostile_id, safe=""))
    assert by_css(browser, "#job-id").text == store.hostile_id
    arguments = by_css(browser, "#arguments").text
    assert SCRIPT in arguments  # shown as the text it is
    assert no_alert(browser)
    assert browser.execute_script("return document.scripts.length;") == 1  # ours only
    # ... also after a live refresh replaced the page's live part.
    eventually(browser, lambda: refreshes(browser) > 0, 5, "a live refresh")
    assert no_alert(browser)
    assert SCRIPT in by_css(browser, "#arguments").text
    assert browser.execute_script("return document.querySelectorAll('script').length;") == 1
    browser.get(base + "/failures")
    assert no_alert(browser)
    assert SCRIPT in by_css(browser, "main").text
