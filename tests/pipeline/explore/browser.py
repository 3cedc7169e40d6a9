"""A real headless Chromium (Debian's ``chromium`` and ``chromedriver``) driven by Selenium, with what the explorer
tests read from it: console messages, every request the page made, its canvas pixels."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import pytest

# Flags for a quiet headless browser on a machine without a GPU: WebGL on SwiftShader (software), and none of
# Chromium's own background traffic, so that every request seen is the page's.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
]


def browser_paths() -> tuple[str, str]:
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if None in found:
        pytest.skip("no chromium and chromedriver (apt-get install -y chromium chromium-driver; .ci/run installs them)")
    return found  # type: ignore[return-value]


@contextlib.contextmanager
def chromium(offline: bool = False) -> Iterator:
    """A fresh headless Chromium (its own profile); ``offline``: the network emulated as cut before any page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths()
    profile = tempfile.mkdtemp(prefix="drlim-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        if offline:
            conditions = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
            driver.execute_cdp_cmd("Network.emulateNetworkConditions", conditions)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(driver, script: str, timeout: float = 60.0):
    """The value of JavaScript ``script`` (an expression) once truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        errors = driver.execute_script("return window.drlim ? window.drlim.errors : []")
        assert not errors, f"page errors: {errors}"
        time.sleep(0.05)
    raise AssertionError(f"{script} still false after {timeout} s; console: {console(driver)}")


def console(driver) -> list[dict]:
    return driver.get_log("browser")


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for since the last call (Chromium's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def canvas_pixels(driver, map_index: int = 0) -> np.ndarray:
    """The map's WebGL canvas as an (h, w, 4) uint8 array."""
    import base64
    import io

    from PIL import Image

    data = driver.execute_script(f"return window.drlim.views[{map_index}].canvas.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGBA"))


def move_to(driver, x: float, y: float, click: bool = False) -> None:
    """The mouse to page coordinates (x, y), as a person moves it (and clicks there)."""
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(round(x), round(y))
    if click:
        actions.w3c_actions.pointer_action.click()
    actions.perform()
