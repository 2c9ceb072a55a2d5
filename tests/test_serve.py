"""`distillgen serve`: serves the build and rebuilds when an article changes."""

import os
import re
import subprocess
import sys
import threading
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


def test_an_edit_shows_before_its_search_index_which_follows(site, tmp_path):
    # Pagefind indexes every page again on any edit (seconds on an atlas): serve shows the
    # edited page with the last search index, and brings the index up to date once idle.
    article = write(site / "a.md", "---\ntitle: First title\n---\n\nHello.\n")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "distillgen", "serve", str(site), "-o", str(out), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in process.stderr], daemon=True).start()
    try:
        url = wait_for(lambda: next((m[1] for m in map(ADDRESS.search, lines) if m), None), timeout=120)
        generation = fetch(url + "__distillgen__/generation")
        index = {p.name for p in (out / "pagefind").rglob("*.pf_fragment")}
        article.write_text("---\ntitle: First title\n---\n\nHello, zyzzogeton.\n")
        wait_for(lambda: fetch(url + "__distillgen__/generation") != generation)
        assert "zyzzogeton" in fetch(url + "a/index.html")
        assert any("search index of the last build" in line for line in lines)
        wait_for(lambda: any("search index updated" in line for line in lines), timeout=120)
        assert {p.name for p in (out / "pagefind").rglob("*.pf_fragment")} != index  # the new text
    finally:
        process.terminate()
        process.wait(timeout=10)


ADDRESS = re.compile(r"at (http://127\.0\.0\.1:\d+/)")
