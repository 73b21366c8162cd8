"""Headless Chromium (Debian's ``chromium`` package) driven by Playwright, for the
dashboard's tests: Playwright cannot download its own browsers here, so it is given
the system one.  Without it the tests fail in CI (``.ci/run`` installs it) and are
skipped elsewhere with the command that installs it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .server import LiveServer

__all__ = ["CHROMIUM", "chromium", "contrast_failures", "sign_in"]

CHROMIUM = Path("/usr/bin/chromium")


def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        why = f"no {CHROMIUM}: apt-get install --no-install-recommends chromium"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    with sync_playwright() as driver:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Page, server: LiveServer, key: str, hash_path: str = "") -> None:
    """Open the dashboard and sign in with ``key`` from the keyboard, as a person does."""
    page.goto(f"{server.url}/{hash_path}")
    page.wait_for_selector("#signin")
    page.keyboard.type(key)  # the key field has the focus
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav:not([hidden])")
    page.wait_for_selector("main h1:not(:text('Sign in'))")


_CONTRAST = """(selector) => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failures = [];
  for (const node of document.querySelectorAll(selector)) {
    if (!node.textContent.trim() || !node.offsetParent) continue;
    const fg = rgb(getComputedStyle(node).color).slice(0, 3);
    const [a, b] = [lum(fg), lum(background(node))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 4.5) failures.push(`${node.tagName}.${node.className}: ${node.textContent.trim().slice(0, 30)} ${ratio.toFixed(2)}`);
  }
  return failures;
}"""


def contrast_failures(page: Page, selector: str) -> list[Any]:
    """Text under ``selector`` whose contrast with its background is below WCAG AA (4.5:1)."""
    found: list[Any] = page.evaluate(_CONTRAST, selector)
    return found
