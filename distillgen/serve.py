"""`distillgen serve`: a local preview that rebuilds on change and reloads the open page.

The reload script is injected into pages as they are served, never written into the build,
so a served site and a built site are the same files. SIGTERM stops it like Ctrl+C: at once,
even mid-build (the build's staging folder is removed), with exit status 0.
"""

from __future__ import annotations

import functools
import gc
import signal
import threading
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import watchfiles

from distillgen.render.page import templates_dir

# rebuild(quick, superseded) -> a BuildResult (None: failed, or stopped). A build after an edit
# is quick: it trusts what the build before it checked (warm.py), and keeps the last search
# index (Pagefind indexes every page again: seconds on an atlas). Once no file has changed for
# CATCH_UP_MS, a full build checks everything again and brings the search index up to date;
# an edit meanwhile stops it (`superseded()` turns true), so that the edit waits for no index.
Rebuild = Callable[[bool, Callable[[], bool]], object]
CATCH_UP_MS = 1000
GENERATION_PATH = "/__distillgen__/generation"
# A page asks for the generation it was served with (`?seen=N`), and the answer waits until a
# build changes it (or WAIT_S pass): the page reloads as soon as the build is written, where
# polling every 700 ms added up to that to every edit. Only a visible page asks (a browser
# opens a few connections per host, for all its tabs), and again when it is shown.
WAIT_S = 20.0
RELOAD_SCRIPT = (
    '<script>(function(){var seen="%s",asking=false;function ask(){'
    'if(asking||document.visibilityState!=="visible"){return;}asking=true;'
    f'fetch("{GENERATION_PATH}?seen="+seen,{{cache:"no-store"}})'
    ".then(function(r){return r.text();})"
    ".then(function(g){asking=false;if(g!==seen){location.reload();}else{ask();}})"
    ".catch(function(){asking=false;setTimeout(ask,1000);});}"
    'document.addEventListener("visibilitychange",ask);ask();})();</script>'
)


class _Generation:
    """How many successful builds happened; pages reload when it changes."""

    def __init__(self) -> None:
        self.value = 0
        self.changed = threading.Condition()

    def bump(self) -> None:
        with self.changed:
            self.value += 1
            self.changed.notify_all()

    def after(self, seen: str | None, timeout: float) -> int:
        """The generation once it is not `seen` (at once when it is not, or `seen` is None),
        else after `timeout` seconds."""
        with self.changed:
            self.changed.wait_for(lambda: seen is None or str(self.value) != seen, timeout)
            return self.value


class _Handler(SimpleHTTPRequestHandler):
    generation: _Generation

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        address, _, query = self.path.partition("?")
        if address == GENERATION_PATH:
            seen = parse_qs(query).get("seen", [None])[0]
            self._send(str(self.generation.after(seen, WAIT_S)).encode(), "text/plain")
            return
        path = Path(self.translate_path(self.path))
        if path.is_dir() and address.endswith("/"):
            path = path / "index.html"
        if path.suffix == ".html" and path.is_file():
            script = RELOAD_SCRIPT % self.generation.value  # the build it was served from
            page = path.read_text(encoding="utf-8").replace("</body>", script + "</body>")
            self._send(page.encode("utf-8"), "text/html; charset=utf-8")
            return
        super().do_GET()

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # requests are not news
        pass


class _Stopped(BaseException):
    """SIGTERM arrived during a build: unwind it (its staging folder is removed) and shut down.
    A BaseException, so that no `except Exception` on the way mistakes it for a failure."""


class _Termination:
    """The SIGTERM handler: sets the watch loop's stop event (watchfiles checks it every 50 ms)
    and, while a build runs, interrupts the build too. Raising inside watchfiles' wait instead
    would be swallowed there as a KeyboardInterrupt, with a warning."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.building = False
        self.received = False

    def __call__(self, signum: int, frame: object) -> None:
        self.received = True
        self.stop.set()
        if self.building:
            raise _Stopped

    def guard(self, rebuild: Rebuild) -> Rebuild:
        def guarded(quick: bool, superseded: Callable[[], bool]):
            self.building = True
            try:
                return rebuild(quick, superseded)
            finally:
                self.building = False

        return guarded


def _unscanned(rebuild: Rebuild) -> Rebuild:
    """What builds keep between them (warm.py, an atlas's plan: half a million objects on an
    atlas site) is frozen out of the garbage collector's view after each build, or every
    full collection after a quick build scans it (0.3 s). A full build thaws it first, and
    collects what earlier builds left in reference cycles once it is done."""

    def thawed_for_full_builds(quick: bool, superseded: Callable[[], bool]):
        if not quick:
            gc.unfreeze()
        try:
            return rebuild(quick, superseded)
        finally:
            if not quick:  # a build raises the collector's thresholds: nothing collected it yet
                gc.collect()
            gc.freeze()

    return thawed_for_full_builds


def _never() -> bool:
    return False


def _watch_edits(src: Path, edited: threading.Event, stop: threading.Event) -> None:
    """Set `edited` at every change. A watcher beside the loop's, for the whole session (its
    start walks the folder): the loop builds each change; this one tells a full build under
    way that a change waits."""
    for _ in watchfiles.watch(
        src, templates_dir(), watch_filter=_watched, stop_event=stop, raise_interrupt=False
    ):
        edited.set()


def _watched(change: watchfiles.Change, path: str) -> bool:
    return "/.distillgen" not in path and not Path(path).name.startswith(".")


def serve_site(
    src: Path,
    out: Path,
    host: str,
    port: int,
    rebuild: Rebuild,
    echo: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    termination = _Termination(stop or threading.Event())
    # Only the main thread may set handlers (tests run serve_site in a thread, with `stop`).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, termination) if in_main else None
    try:
        _serve(src, out, host, port, termination.guard(_unscanned(rebuild)), echo, termination.stop)
    except _Stopped:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    if termination.received:
        echo("stopped (SIGTERM)")


def _serve(
    src: Path,
    out: Path,
    host: str,
    port: int,
    rebuild: Rebuild,
    echo: Callable[[str], None],
    stop: threading.Event,
) -> None:
    generation = _Generation()
    rebuild(False, _never)
    handler = functools.partial(
        type("Handler", (_Handler,), {"generation": generation}), directory=str(out.resolve())
    )
    server = ThreadingHTTPServer((host, port), handler)
    # A short poll, so that shutdown() returns within a tenth of a second.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    echo(f"serving {out}/ at http://{host}:{server.server_address[1]}/ (Ctrl+C to stop)")
    edited = threading.Event()
    threading.Thread(target=_watch_edits, args=(src, edited, stop), daemon=True).start()
    owed = False  # a quick build trusted what a full build checks
    behind = False  # and the site's search index is an earlier build's
    try:
        for changes in watchfiles.watch(
            src,
            templates_dir(),
            watch_filter=_watched,
            stop_event=stop,
            raise_interrupt=False,
            yield_on_timeout=True,
            rust_timeout=CATCH_UP_MS,
        ):
            if not changes:
                if owed:  # once: a full build that fails or stops waits for the author's next edit
                    owed = False
                    edited.clear()  # nothing changed for CATCH_UP_MS
                    built = rebuild(False, lambda: edited.is_set() or stop.is_set())
                    if built:
                        if getattr(built, "rendered", 0) or getattr(built, "computed", 0):
                            generation.bump()  # something changed behind serve's back, now repaired
                        echo("checked in full" + (", search index updated" if behind else ""))
                continue
            names = sorted({Path(path).name for _, path in changes})
            echo(f"changed: {', '.join(names)}; rebuilding")
            if built := rebuild(True, _never):
                generation.bump()
                owed = True
                behind = getattr(built, "search_behind", False)
    finally:
        server.shutdown()
        server.server_close()
