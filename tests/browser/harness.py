"""A real console in a real browser: `recsys serve` on a free port, headless Chromium.

The browser is Debian's `chromium` driven through its `chromium-driver`, both found on
the machine (`RECSYS_CHROMIUM`, `RECSYS_CHROMEDRIVER` override the paths). The driver
path goes to Selenium's `Service`, so Selenium Manager never runs and nothing is
downloaded. Chromium resolves no host but the local one: the demo catalog's image URLs
fail at once instead of waiting on a network the machine does not have.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.api.conftest import stop_server

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

DESKTOP = (1280, 900)
PHONE = (375, 812)


def browser_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver), or None when either is missing."""
    browser = os.environ.get("RECSYS_CHROMIUM") or shutil.which("chromium")
    driver = os.environ.get("RECSYS_CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver or not Path(browser).is_file() or not Path(driver).is_file():
        return None
    return browser, driver


def missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if browser_paths() is None:
        return "chromium or chromium-driver is missing (apt-get install chromium chromium-driver)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(home: Path, database_url: str, log: Path, **env: str) -> Iterator[str]:
    """`recsys serve` (one supervised uvicorn worker) on a free port; yields its base URL."""
    port = free_port()
    environ = {
        **os.environ,
        "RECSYS_HOME": str(home),
        "RECSYS_DATABASE_URL": database_url,
        "RECSYS_LOG_FORMAT": "json",
        **env,
    }
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if "RECSYS_API_KEYS" not in env:
        environ.pop("RECSYS_API_KEYS", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recsys", "serve", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, log)
        yield base
    finally:
        stop_server(proc)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"recsys serve exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"recsys serve never became ready:\n{tail}")


@contextmanager
def chromium(size: tuple[int, int] = DESKTOP) -> Iterator[WebDriver]:
    """A headless Chromium at `size` (CSS pixels, device scale 1)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    paths = browser_paths()
    if paths is None:
        raise RuntimeError(missing_reason())
    browser, driver_path = paths
    options = Options()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--force-device-scale-factor=1",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        fit_viewport(driver, size)
        yield driver
    finally:
        driver.quit()


def fit_viewport(driver: WebDriver, size: tuple[int, int]) -> None:
    """Make the page's viewport exactly `size` (a window's frame would take some of it)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600},
    )


def screenshot(driver: WebDriver, path: Path, full_page: bool = True) -> Path:
    """A PNG of the page: the whole page by default, else the viewport."""
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full_page}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def unlabelled_controls(driver: WebDriver) -> list[str]:
    """Form controls, iframes and images a screen reader could not name (outer HTML)."""
    script = """
    const bad = [];
    for (const el of document.querySelectorAll('input, select, textarea, button')) {
      if (el.type === 'hidden') continue;
      const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
        || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim());
      if (!named) bad.push(el.outerHTML);
    }
    for (const el of document.querySelectorAll('iframe')) {
      if (!el.getAttribute('title')) bad.push(el.outerHTML.slice(0, 200));
    }
    for (const el of document.querySelectorAll('img')) {
      if (!el.hasAttribute('alt')) bad.push(el.outerHTML);
    }
    return bad;
    """
    return list(driver.execute_script(script))


def page_overflow(driver: WebDriver) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no sideways scroll)."""
    return int(
        driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )
