"""The report page in a real headless browser (Debian's chromium + chromedriver, via selenium):
no console error, every image loaded with a non-zero size, and the task filter works.

Skipped where chromium is not installed, except in CI (CI=true), where .ci/run installs it
and a missing browser is a failure."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cli_support import invoke
from report_support import meta_run, multitask_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _missing() -> str:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return ""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _load(driver, page: Path) -> None:
    driver.get(page.resolve().as_uri())
    driver.execute_script("return document.readyState")  # waits for the load event with the page-load strategy


def _check_page(driver, page: Path) -> list[dict]:
    _load(driver, page)
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], severe
    images = driver.execute_script(
        "return Array.from(document.images).map(i => ({src: i.src, complete: i.complete, "
        "width: i.naturalWidth, height: i.naturalHeight}))")
    assert images, "the page has no images"
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    return images


def test_the_30_task_page_loads_cleanly(browser, tmp_path):
    run = multitask_run(tmp_path / "thirty", tasks=30)
    assert invoke("report", str(run)).exit_code == 0
    images = _check_page(browser, run / "report" / "index.html")
    assert {Path(i["src"]).name for i in images} == {"curves_loss.png", "curves_metrics.png", "baseline.png",
                                                     "affinity.png"}
    # The filter box of the final metrics table narrows it to the matching task.
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.CSS_SELECTOR, 'input.filter[data-table="final-metrics"]')
    box.send_keys("task_17")
    visible = browser.execute_script(
        "return Array.from(document.querySelectorAll('#final-metrics tbody tr'))"
        ".filter(r => r.style.display !== 'none').map(r => r.cells[0].textContent)")
    assert visible == ["task_17"]
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_a_meta_page_loads_cleanly(browser, tmp_path):
    run = meta_run(tmp_path / "meta")
    assert invoke("report", str(run)).exit_code == 0
    images = _check_page(browser, run / "report" / "index.html")
    assert "adaptation.png" in {Path(i["src"]).name for i in images}


def test_a_broken_image_would_be_caught(browser, tmp_path):
    """The check itself can fail: a page whose figure is gone is reported."""
    run = multitask_run(tmp_path / "broken", tasks=2, affinity=False)
    assert invoke("report", str(run)).exit_code == 0
    (run / "report" / "baseline.png").unlink()
    with pytest.raises(AssertionError):
        _check_page(browser, run / "report" / "index.html")
    shutil.rmtree(run / "report")
