"""The web page in a real browser: headless Chromium driven by Selenium, against a live server.

Debian's `chromium` and `chromium-driver` (scripts/setup.sh installs them) are used as they are:
Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver and never downloads a driver.
Without them the module is skipped, saying so; with them, it must pass.

The suite runs with `--disable-socket --allow-unix-socket` (pytest-socket). These tests need TCP
on this machine only (uvicorn in a thread, chromedriver's port), so the module enables sockets
for itself with pytest-socket's `enable_socket` marker and limits them to loopback with
`allow_hosts`. Screenshots are kept under pytest's base temporary folder, in `web-screenshots/`
(`pytest --basetemp=DIR` puts them in DIR/web-screenshots/), or in $MEMVID_WEB_SCREENSHOTS when set.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from langchain_memvid import MemvidVectorStore
from langchain_memvid.web import CannotListen, RunningServer, start_server

from .web_store import HOSTILE_META, HOSTILE_TEXT, build_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="Chromium is not installed: apt-get install chromium chromium-driver (scripts/setup.sh does)",
    ),
    pytest.mark.enable_socket,
    pytest.mark.allow_hosts(["127.0.0.1", "::1"]),
]

WAIT = 20  # seconds; each step usually takes well under one


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(
        os.environ.get("MEMVID_WEB_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "web-screenshots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemvidVectorStore]:
    vs = build_store(tmp_path_factory.mktemp("web-browser") / "store")
    try:
        yield vs
    finally:
        vs.close()


@pytest.fixture(scope="module")
def server(store: MemvidVectorStore) -> Iterator[RunningServer]:
    with start_server(store, host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in [
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        "--window-size=1280,900",
    ]:
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(WAIT)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def desktop(driver: Any) -> Any:
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.set_window_size(1280, 900)
    return driver


@pytest.fixture
def phone(driver: Any) -> Iterator[Any]:
    # A phone's viewport (iPhone 12-15 size): the page lays itself out as it would there.
    metrics = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        yield driver
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT).until(condition)
    except TimeoutException:
        status = driver.execute_script(
            "return [...document.querySelectorAll('.status')].map(e => e.textContent).join(' | ')"
        )
        pytest.fail(f"timed out waiting for {what}; page status: {status!r}; url: {driver.current_url}")


def js(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


def hits(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return [h for h in driver.find_elements(By.CSS_SELECTOR, "#hits a.hit") if h.is_displayed()]


def frame_loaded(driver: Any) -> bool:
    return bool(
        js(driver, "const i = document.getElementById('frame-img'); return i.complete && i.naturalWidth > 0")
    )


def no_horizontal_overflow(driver: Any) -> None:
    widths = js(
        driver,
        "return [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]",
    )
    assert widths[0] <= widths[2], f"page is {widths[0]} px wide in a {widths[2]} px window"
    assert widths[1] <= widths[2], f"body is {widths[1]} px wide in a {widths[2]} px window"


# -- desktop ---------------------------------------------------------------------------------------


def test_search_open_a_hit_and_see_its_frame(desktop: Any, server: RunningServer, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = desktop
    driver.get(server.url)
    wait_for(driver, lambda d: d.find_element(By.ID, "store-name").text == "store", "the store's name")
    box = driver.find_element(By.ID, "q")
    box.send_keys("QR damage")
    driver.find_element(By.ID, "k").clear()
    driver.find_element(By.ID, "k").send_keys("3")
    box.send_keys(Keys.ENTER)
    wait_for(driver, lambda d: len(hits(d)) == 3, "three hits")
    query = parse_qs(urlsplit(driver.current_url).query)
    assert query == {"q": ["QR damage"], "k": ["3"]}
    first = hits(driver)[0]
    assert "qr.pdf, p. 2" in first.text
    assert "A QR code survives damage" in first.text
    assert "frame" in first.find_element(By.CSS_SELECTOR, ".place").text
    first.click()
    wait_for(driver, frame_loaded, "the hit's frame image")
    detail = driver.find_element(By.ID, "detail")
    assert detail.is_displayed()
    assert driver.find_element(By.ID, "detail-text").text.startswith("A QR code survives damage")
    assert js(driver, "return document.getElementById('frame-img').naturalWidth") > 20
    assert parse_qs(urlsplit(driver.current_url).query)["id"] == ["qr-damage"]
    # The neighbouring frames are real images too, the record's own one marked.
    wait_for(
        driver,
        lambda d: js(
            d,
            "return [...document.querySelectorAll('#strip img')].every(i => i.complete && i.naturalWidth > 0)",
        ),
        "the neighbouring frames",
    )
    assert driver.find_elements(By.CSS_SELECTOR, "#strip button.own")
    driver.save_screenshot(str(shots / "desktop-search.png"))

    # The address is the whole state: opening it afresh shows the same hits and record.
    url = driver.current_url
    driver.get("about:blank")
    driver.get(url)
    wait_for(driver, lambda d: len(hits(d)) == 3 and frame_loaded(d), "the shared link's hits and frame")
    assert driver.find_element(By.ID, "q").get_attribute("value") == "QR damage"
    assert driver.find_element(By.ID, "detail-text").text.startswith("A QR code survives damage")
    # Back closes the record and keeps the hits.
    driver.find_element(By.ID, "detail-close").click()
    wait_for(driver, lambda d: not d.find_element(By.ID, "detail").is_displayed(), "the record to close")
    driver.back()
    wait_for(
        driver,
        lambda d: d.find_element(By.ID, "detail").is_displayed() and frame_loaded(d),
        "back to the record",
    )


def test_a_hostile_document_is_shown_as_text_and_runs_nothing(desktop: Any, server: RunningServer) -> None:
    from selenium.webdriver.common.by import By

    driver = desktop
    driver.get(server.url + '?q=hostile&k=1&filter={"source":"hostile.txt"}')
    wait_for(driver, lambda d: len(hits(d)) == 1, "the hostile hit")
    snippet = hits(driver)[0].find_element(By.CSS_SELECTOR, ".snippet")
    assert snippet.get_attribute("textContent") == HOSTILE_TEXT
    hits(driver)[0].click()
    wait_for(driver, frame_loaded, "the hostile record's frame")
    assert driver.find_element(By.ID, "detail-text").get_attribute("textContent") == HOSTILE_TEXT
    cells = [c.get_attribute("textContent") for c in driver.find_elements(By.CSS_SELECTOR, "#meta td")]
    assert HOSTILE_META["title"] in cells
    # Nothing in the markup became an element, and nothing ran.
    assert (
        driver.find_elements(By.CSS_SELECTOR, "#hits img, #detail-text *, #meta img, #meta b, main script")
        == []
    )
    assert js(driver, "return [window.pwned, window.pwnedMeta]") == [None, None]
    assert driver.title != "pwned"
    assert "pwned" not in driver.title
    # The same holds in the browse view.
    driver.get(server.url + "?view=browse&source=hostile.txt")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#records a.hit"), "the browse list")
    text = driver.find_element(By.CSS_SELECTOR, "#records .snippet").get_attribute("textContent")
    assert text == HOSTILE_TEXT
    assert js(driver, "return [window.pwned, window.pwnedMeta, document.title]")[:2] == [None, None]
    assert driver.title != "pwned"


def test_browse_pages_and_filter_by_source(desktop: Any, server: RunningServer) -> None:
    from selenium.webdriver.common.by import By

    driver = desktop
    driver.get(server.url + "?view=browse")
    wait_for(
        driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#records a.hit")) == 20, "a page of records"
    )
    assert "1\u201320 of 52 records" in driver.find_element(By.ID, "browse-status").text
    driver.find_element(By.ID, "next").click()
    wait_for(
        driver, lambda d: "21\u201340 of 52" in d.find_element(By.ID, "browse-status").text, "the second page"
    )
    assert parse_qs(urlsplit(driver.current_url).query)["offset"] == ["20"]
    source = driver.find_element(By.ID, "source")
    source.clear()
    source.send_keys("filler.txt")
    driver.find_element(By.CSS_SELECTOR, "#browse-form button").click()
    wait_for(
        driver,
        lambda d: "of 45 records from filler.txt" in d.find_element(By.ID, "browse-status").text,
        "fillers",
    )
    no_horizontal_overflow(driver)


def test_the_store_view_shows_figures_and_verifies(desktop: Any, server: RunningServer, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = desktop
    driver.get(server.url)
    wait_for(driver, lambda d: d.find_element(By.ID, "store-name").text == "store", "the page")
    driver.find_element(By.ID, "tab-store").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "figures").text, "the figures")
    figures = driver.find_element(By.ID, "figures").text
    for label in [
        "RECORDS",
        "52",
        "VIDEO",
        "MODEL",
        "TopicEmbedding",
        "INDEX",
        "PROFILE",
        "lossless",
        "FORMAT VERSION",
    ]:
        assert label in figures, label
    assert urlsplit(driver.current_url).query == "view=store"
    driver.find_element(By.ID, "verify-button").click()
    wait_for(
        driver, lambda d: "OK: no problems found" in d.find_element(By.ID, "verify-status").text, "verify"
    )
    assert "52 records" in driver.find_element(By.ID, "verify-status").text
    driver.save_screenshot(str(shots / "desktop-store.png"))


def test_a_bad_request_shows_the_apis_message(desktop: Any, server: RunningServer) -> None:
    from selenium.webdriver.common.by import By

    driver = desktop
    driver.get(server.url + "?q=qr&mode=telepathy")
    wait_for(
        driver, lambda d: "mode must be one of" in d.find_element(By.ID, "search-status").text, "the error"
    )
    assert "error" in driver.find_element(By.ID, "search-status").get_attribute("class")


# -- phone -----------------------------------------------------------------------------------------


def test_the_page_works_at_phone_width(phone: Any, server: RunningServer, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = phone
    driver.get(server.url)
    wait_for(driver, lambda d: d.find_element(By.ID, "store-name").text == "store", "the page")
    assert js(driver, "return window.innerWidth") == 390
    no_horizontal_overflow(driver)
    box = driver.find_element(By.ID, "q")
    button = driver.find_element(By.ID, "search-button")
    assert box.is_displayed()
    assert button.is_displayed()
    assert box.size["width"] >= 150  # room to type
    assert button.location["x"] + button.size["width"] <= 390
    box.send_keys("film archive")
    button.click()
    wait_for(driver, lambda d: len(hits(d)) == 4, "four hits")
    no_horizontal_overflow(driver)
    assert "film.txt" in hits(driver)[0].text
    driver.save_screenshot(str(shots / "phone-search.png"))
    hits(driver)[0].click()
    wait_for(driver, frame_loaded, "the frame")
    detail = driver.find_element(By.ID, "detail")
    assert detail.size["width"] == 390  # the record opens over the list, across the screen
    no_horizontal_overflow(driver)
    assert driver.find_element(By.ID, "frame-img").size["width"] <= 390
    driver.save_screenshot(str(shots / "phone-record.png"))
    driver.find_element(By.ID, "detail-close").click()
    wait_for(driver, lambda d: not d.find_element(By.ID, "detail").is_displayed(), "the list again")
    assert hits(driver)[0].is_displayed()
    for view in ["browse", "store"]:
        driver.find_element(By.ID, f"tab-{view}").click()
        wait_for(driver, lambda d, v=view: d.find_element(By.ID, f"view-{v}").is_displayed(), view)
        no_horizontal_overflow(driver)


# -- the server ------------------------------------------------------------------------------------


def test_a_port_in_use_is_refused_with_a_message(store: MemvidVectorStore, server: RunningServer) -> None:
    port = int(urlsplit(server.url).port or 0)
    with pytest.raises(CannotListen, match=rf"Cannot listen on 127\.0\.0\.1:{port} .*choose another --port"):
        start_server(store, host="127.0.0.1", port=port)


def test_the_server_answers_over_tcp_and_refuses_foreign_hosts(server: RunningServer) -> None:
    port = int(urlsplit(server.url).port or 0)
    for host, status in [("127.0.0.1", b"200"), ("evil.example", b"400")]:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
            conn.sendall(f"GET /api/stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        assert reply.split(b" ", 2)[1] == status, reply[:200]
        assert b"content-security-policy" in reply.lower()
