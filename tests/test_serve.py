"""`distillgen serve`: serves the build and rebuilds when an article changes."""

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import run_cli, write


def fetch(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8")


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@contextmanager
def serving(site: Path, out: Path):
    """`distillgen serve` on a free port: (its address, the lines it printed so far)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "distillgen", "serve", str(site), "-o", str(out), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in process.stderr], daemon=True).start()
    try:
        yield (
            wait_for(lambda: next((m[1] for m in map(ADDRESS.search, lines) if m), None), timeout=120),
            lines,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


ADDRESS = re.compile(r"at (http://127\.0\.0\.1:\d+/)")


def test_serve_rebuilds_and_signals_reload(site, tmp_path):
    article = write(site / "a.md", "---\ntitle: First title\n---\n\nHello.\n")
    with serving(site, tmp_path / "out") as (url, _):
        page = fetch(url + "a/index.html")
        assert "First title" in page
        assert "__distillgen__/generation" in page  # the reload script is injected when served
        assert "__distillgen__" not in (tmp_path / "out" / "a" / "index.html").read_text()  # not built
        generation = fetch(url + "__distillgen__/generation")
        # A page asks with the generation it has, and hears of the next build the moment it is
        # written: the answer waits for it.
        heard = {}
        listener = threading.Thread(
            target=lambda: heard.update(at=fetch(url + f"__distillgen__/generation?seen={generation}", 60)),
            daemon=True,
        )
        listener.start()
        time.sleep(1)
        assert listener.is_alive()  # nothing built since: no answer yet

        article.write_text("---\ntitle: Second title\n---\n\nHello.\n")
        listener.join(timeout=60)
        assert heard["at"] != generation
        assert "Second title" in fetch(url + "a/index.html")

        # A broken edit keeps the last good site and does not signal a reload.
        generation = fetch(url + "__distillgen__/generation")
        article.write_text("---\ntitle: Broken\n---\n\n```{figur} x\n```\n")
        time.sleep(2)
        assert fetch(url + "__distillgen__/generation") == generation
        assert "Second title" in fetch(url + "a/index.html")


def test_an_edit_shows_before_its_search_index_which_follows(site, tmp_path):
    # Pagefind indexes every page again on any edit (seconds on an atlas): serve shows the
    # edited page with the last search index, and brings the index up to date once idle.
    article = write(site / "a.md", "---\ntitle: First title\n---\n\nHello.\n")
    out = tmp_path / "out"
    with serving(site, out) as (url, lines):
        generation = fetch(url + "__distillgen__/generation")
        index = {p.name for p in (out / "pagefind").rglob("*.pf_fragment")}
        article.write_text("---\ntitle: First title\n---\n\nHello, zyzzogeton.\n")
        wait_for(lambda: fetch(url + "__distillgen__/generation") != generation)
        assert "zyzzogeton" in fetch(url + "a/index.html")
        assert any("search index of the last build" in line for line in lines)
        wait_for(lambda: any("search index updated" in line for line in lines), timeout=120)
        assert {p.name for p in (out / "pagefind").rglob("*.pf_fragment")} != index  # the new text


@pytest.mark.browser
def test_an_open_page_reloads_itself_once_the_build_after_an_edit_is_written(site, tmp_path, open_page):
    article = write(site / "a.md", "---\ntitle: First title\n---\n\nHello.\n")
    with serving(site, tmp_path / "out") as (url, _):
        page, problems = open_page(url + "a/index.html")
        assert "First title" in page.locator("h1").first.inner_text()
        article.write_text("---\ntitle: Second title\n---\n\nHello again.\n")
        page.get_by_text("Hello again.").wait_for()  # the page reloaded, by itself
        assert "Second title" in page.locator("h1").first.inner_text()
        assert not problems


def test_an_edit_stops_the_full_build_that_would_keep_it_waiting(site, tmp_path, monkeypatch):
    # Once the author pauses, serve builds in full, Pagefind included (seconds on an atlas
    # site): an edit meanwhile stops that build, Pagefind too, and is built at once. Pagefind
    # here takes a quarter of an hour.
    from distillgen.cli import serve_builds
    from distillgen.render import search
    from distillgen.serve import serve_site

    article = write(site / "a.md", "---\ntitle: First title\n---\n\nHello.\n")
    out = tmp_path / "out"
    assert run_cli("build", str(site), "-o", str(out)).exit_code == 0  # this search index, made
    started = tmp_path / "pagefind.pid"
    slow = write(tmp_path / "pagefind", f"#!/bin/sh\necho $$ > {started}\nexec sleep 900\n")
    slow.chmod(0o755)
    monkeypatch.setattr(search, "_executable", lambda: str(slow))
    lines: list[str] = []
    stop = threading.Event()
    rebuild = serve_builds(site, out, strict=False, quiet=True, verbose=0)
    server = threading.Thread(
        target=serve_site, args=(site, out, "127.0.0.1", 0, rebuild, lines.append, stop), daemon=True
    )
    server.start()
    try:
        url = wait_for(lambda: next((m[1] for m in map(ADDRESS.search, lines) if m), None), timeout=120)
        article.write_text("---\ntitle: Second title\n---\n\nHello.\n")
        # a minute or two: under the whole suite on 2 cores, serve's build took over 30 s here
        wait_for(lambda: "Second title" in fetch(url + "a/index.html"), timeout=120)
        # the full build's Pagefind
        wait_for(lambda: started.exists() and started.read_text().strip(), timeout=120)
        pagefind = int(started.read_text())
        article.write_text("---\ntitle: Third title\n---\n\nHello.\n")
        wait_for(lambda: "Third title" in fetch(url + "a/index.html"), timeout=120)
        wait_for(lambda: not _running(pagefind))  # stopped, not left behind
    finally:
        stop.set()
        server.join(timeout=60)
    assert not server.is_alive()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
