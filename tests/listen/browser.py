"""Driving the listening pages in headless Chromium: Debian's `chromium` through playwright.

playwright's own browser download cannot reach its CDN here, so the tests point it at the system
binary (`make test` installs the package). Pages are opened from file://, as a listener would open
them from the folder: no server.

    python -m tests.listen.browser results/pages/index.html pages.png   # a screenshot by hand
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
)


def chromium_binary() -> str:
    found = shutil.which("chromium")
    if found is None:  # a failure, not a skip: the page tests are what shows the pages work
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    return found


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.js_errors = errors  # read by the tests: a script error is a failed page
            yield page
        finally:
            browser.close()


def open_file(page, path: Path) -> None:
    page.goto(Path(path).resolve().as_uri())
    page.wait_for_load_state("load")


def audio_states(page, timeout_ms: int = 30_000) -> list[dict]:
    """Every <audio> once its metadata loaded or failed: src, whether FLAC plays, readyState, error, duration."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)",
        timeout=timeout_ms,
    )
    return page.evaluate(
        """() => [...document.querySelectorAll('audio')].map(a => ({
            src: a.currentSrc, can_play: a.canPlayType('audio/flac'), ready: a.readyState,
            error: a.error ? a.error.code : null, duration: a.duration}))"""
    )


def broken_images(page) -> list[str]:
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    return page.evaluate("() => [...document.images].filter(i => !i.naturalWidth).map(i => i.src)")


def rate_kit(page, rating: Callable[[str, str], int], rater: str, out: Path) -> Path:
    """Rate every song of the open kit page with rating(sample, dimension), then download the file."""
    samples = kit_samples(page)
    dimensions = page.eval_on_selector_all(
        ".sample:first-of-type fieldset", "nodes => nodes.map(n => n.dataset.dimension)"
    )
    page.fill("#rater", rater)
    for sample in samples:
        for dim in dimensions:
            page.check(f'input[name="{sample}:{dim}"][value="{rating(sample, dim)}"]')
    with page.expect_download() as download:
        page.click("#submit")
    path = Path(out) / download.value.suggested_filename
    download.value.save_as(path)
    return path


def wait_until_stored(context, probe: Path, text: str, timeout_ms: int = 10_000) -> None:
    """Wait until another page of `context` (an empty file `probe`, same file:// origin, no script of ours)
    reads `text` in some localStorage value: the write has then reached the browser process."""
    Path(probe).write_text("<!doctype html><title>probe</title>")
    page = context.new_page()
    try:
        open_file(page, probe)
        page.wait_for_function(
            "t => Object.keys(localStorage).some(k => (localStorage.getItem(k) || '').includes(t))",
            arg=text,
            timeout=timeout_ms,
        )
    finally:
        page.close()


def kit_samples(page) -> list[str]:
    return page.eval_on_selector_all(".sample", "nodes => nodes.map(n => n.dataset.sample)")


def screenshot(page, path: Path, full_page: bool = True, max_height: int = 4000) -> Path:
    """A screenshot of the page, cut at max_height so a page of a hundred songs stays a readable image."""
    height = min(page.evaluate("document.documentElement.scrollHeight"), max_height)
    clip: Mapping = {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height}
    page.screenshot(path=str(path), full_page=full_page, clip=clip if full_page else None)
    return Path(path)


if __name__ == "__main__":
    with chromium_page() as page:
        open_file(page, Path(sys.argv[1]))
        audio_states(page)
        print(screenshot(page, Path(sys.argv[2])))
