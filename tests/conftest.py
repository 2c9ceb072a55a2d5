from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from filelock import FileLock

from distillgen.cli import main

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one torch thread each (set before torch is
    # imported, and inherited by the builds they start), or OpenMP's spinning threads
    # oversubscribe the cores and everything runs many times slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "articles"
CORPUS_BIB = ROOT / "tests" / "data" / "bib"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run_cli(*args: str):
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def serve_build(src: Path, out: Path, cache: Path, warm, quick: bool):
    """One of `distillgen serve`'s builds: in place, told what the process's builds before it
    checked (`warm`), quick right after an edit; its BuildResult."""
    from distillgen.cli import run_build

    built = run_build(
        src, out, cache_dir=cache, strict=False, quiet=True, verbose=0, quick=quick, in_place=True, warm=warm
    )
    assert built is not None
    return built


def build_article(root: Path, name: str, text: str) -> Path:
    """Write `text` as root/src/<name>.md, build it with a cache of its own; the output folder."""
    src = write(root / "src" / f"{name}.md", text).parent
    result = run_cli("build", str(src), "-o", str(root / "out"), "--cache-dir", str(root / "cache"))
    assert result.exit_code == 0, result.output
    return root / "out"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """An empty article folder with a small bibliography and an image next to it."""
    src = tmp_path / "src"
    write(
        src / "refs.bib",
        """
        @article{olah2020zoom,
          author = {Olah, Chris and Cammarata, Nick and Schubert, Ludwig},
          title = {Zoom In: An Introduction to Circuits},
          journal = {Distill}, year = {2020}
        }
        @article{cammarata2020curve,
          author = {Cammarata, Nick and Olah, Chris},
          title = {Curve Detectors}, journal = {Distill}, year = {2020}
        }
        """,
    )
    shutil.copy(ARTICLES / "weight-colours.svg", src / "scale.svg")
    return src


def computed_once(
    sources: Callable[[Path], tuple[Path, Path, Path]], build: Callable[[Path, Path, Path], object]
):
    """The fixtures `computed` and `site` of a test module whose tests each rebuild one site:
    `sources(root)` writes it and names (src, out, cache) under root, `build` builds it (and
    asserts it built). `computed` is its cache, computed once for the module; `site` is a fresh
    copy of the sources with that cache's entries alone (no index, kept articles, pages or
    search bundle), as a cache committed elsewhere arrives: a test's first build computes
    nothing."""

    @pytest.fixture(scope="module")
    def computed(tmp_path_factory) -> Path:
        src, out, cache = sources(tmp_path_factory.mktemp("computed"))
        build(src, out, cache)
        return cache

    @pytest.fixture
    def site(tmp_path: Path, computed: Path) -> tuple[Path, Path, Path]:
        src, out, cache = sources(tmp_path)
        ignored = shutil.ignore_patterns("index.json", "pages", "checked", "search", ".lock")
        shutil.copytree(computed, cache, ignore=ignored)
        return src, out, cache

    return computed, site


SHIPPED_CACHE = ARTICLES / ".distillgen" / "cache"  # the example site's figures, in git


@pytest.fixture(scope="session")
def example_build(tmp_path_factory, worker_id) -> Path:
    """The example site in articles/, built once for the whole run (shared by pytest-xdist's
    workers) from the cache that ships its figures, computing what it lacks as any build
    would; its summary line is in build.log beside it."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # the run's folder, above each worker's own
    out, log = shared / "example" / "build", shared / "example" / "build.log"
    with FileLock(shared / "example.lock"):
        if not log.exists():
            result = run_cli("build", str(ARTICLES), "-o", str(out), "--strict")
            assert result.exit_code == 0, result.output
            log.write_text(result.stderr.splitlines()[-1])
    return out


CHROMIUM = "/usr/bin/chromium"
# A hang in the browser must fail in minutes with its stack, never take CI's 90: each browser
# action (a click, a load, a wait) gives up after ACTION_TIMEOUT_MS, and a browser test after
# BROWSER_TEST_TIMEOUT_S of its own run (its fixtures' builds are under the suite's timeout).
ACTION_TIMEOUT_MS = 15_000
BROWSER_TEST_TIMEOUT_S = 240
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (`make test` installs it when missing)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run the tests with `make test`, which installs it")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=ACTION_TIMEOUT_MS * 4
        )
        new_context = chromium.new_context

        def new_context_with_timeouts(**options):
            # Playwright's default is 30 s an action and none for some waits; every test's
            # context gets the same short one, whoever opens it.
            context = new_context(**options)
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
            return context

        chromium.new_context = new_context_with_timeouts
        yield chromium
        chromium.close()


# Files that take longest, run first: `make test`'s workers take whole files (--dist loadfile,
# --no-loadscope-reorder: xdist would otherwise start with the files of most tests, the quick
# ones, and leave these for last, one worker busy while the other waits). Ordered by measured
# time; the first two need no `example_build` and the third builds it, so that neither
# worker starts by waiting on its lock.
LONGEST_FIRST = [
    "test_ray.py",
    "test_dictionary.py",
    "test_verify.py",
    "test_reader.py",
    "test_rebuild.py",
    "test_folders.py",
    "test_models.py",
    "test_myst.py",
    "test_figure_text.py",
    "test_featurevis_build.py",
    "test_incremental.py",
    "test_atlas.py",
]


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest in order
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(BROWSER_TEST_TIMEOUT_S, func_only=True))


@pytest.fixture
def open_page(browser):
    """open_page(url, width) -> (page, problems): problems collects console errors and exceptions."""
    contexts = []

    def _open(url: str, width: int = 1280):
        context = browser.new_context(viewport={"width": width, "height": 800})
        contexts.append(context)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url)
        page.wait_for_load_state("load")
        return page, problems

    yield _open
    for context in contexts:
        context.close()


def render_snippet(folder: Path, markdown: str, front: str = "title: T\n") -> tuple[str | None, list[str]]:
    """`markdown` as an article's body through parse, check and render, as `distillgen build`
    does (front matter, directives, references); (body HTML or None after errors, diagnostics)."""
    from distillgen.diagnostics import Reporter
    from distillgen.project import load_articles

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.md"):
        old.unlink()
    (folder / "a.md").write_text(f"---\n{front}---\n{markdown}", encoding="utf-8")
    reporter = Reporter()
    (article,) = load_articles(folder, reporter, lambda _: None)
    diagnostics = [str(d) for d in reporter.diagnostics]
    if reporter.errors:
        return None, diagnostics
    html, _footnotes, _references = article.render({})
    return html, diagnostics
