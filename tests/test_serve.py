"""`distillgen serve`: serves the build and rebuilds when an article changes."""

import os
import re
import subprocess
import sys
import time
import urllib.request

from tests.conftest import write


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode("utf-8")


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_serve_rebuilds_and_signals_reload(site, tmp_path):
    article = write(site / "a.md", "---\ntitle: First title\n---\n\nHello.\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "distillgen", "serve", str(site), "-o", str(tmp_path / "out"), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = None
        for line in process.stderr:
            if match := re.search(r"at (http://127\.0\.0\.1:\d+/)", line):
                url = match[1]
                break
        assert url, "serve did not print its address"
        page = fetch(url + "a/index.html")
        assert "First title" in page
        assert "__distillgen__/generation" in page  # the reload script is injected when served
        assert "__distillgen__" not in (tmp_path / "out" / "a" / "index.html").read_text()  # not built
        generation = fetch(url + "__distillgen__/generation")

        article.write_text("---\ntitle: Second title\n---\n\nHello.\n")
        wait_for(lambda: fetch(url + "__distillgen__/generation") != generation)
        assert "Second title" in fetch(url + "a/index.html")

        # A broken edit keeps the last good site and does not signal a reload.
        generation = fetch(url + "__distillgen__/generation")
        article.write_text("---\ntitle: Broken\n---\n\n```{figur} x\n```\n")
        time.sleep(2)
        assert fetch(url + "__distillgen__/generation") == generation
        assert "Second title" in fetch(url + "a/index.html")
    finally:
        process.terminate()
        process.wait(timeout=10)
