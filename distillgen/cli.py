"""The command line: `distillgen build | atlas | new | serve | models | directives | zoo`."""

from __future__ import annotations

import gc
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from distillgen import __version__
from distillgen.diagnostics import BuildFailed, Reporter, Superseded, suggest
from distillgen.source.atlasrequest import LIMITS, AtlasRequest
from distillgen.zoo import ZOO

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from distillgen.serve import Rebuild
    from distillgen.warm import Warm

SRC = click.argument("src", default="articles", type=click.Path(path_type=Path))
OUT = click.option(
    "-o",
    "--out",
    default="build",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder the site is written to (replaced whole on success).",
)
STRICT = click.option("--strict", is_flag=True, help="Treat warnings as errors.")
PRUNE = click.option(
    "--prune-cache",
    is_flag=True,
    help="Once the site is built, remove the cached figures it does not use (earlier versions of "
    "its figures; in a cache shared with other sites, theirs too).",
)


def _compute_options(f):
    """Where figures are computed and cached: shared by build and serve."""
    f = click.option(
        "--no-wait",
        is_flag=True,
        help="Fail instead of waiting when another build uses the same cache or output folder.",
    )(f)
    f = click.option(
        "--frozen", is_flag=True, help="Never compute: fail, listing the figures missing from the cache."
    )(f)
    f = click.option("--no-cache", is_flag=True, help="Recompute every figure (and refresh the cache).")(f)
    return _engine_options(f)


def _engine_options(f):
    """Where figures are computed, and the cache: shared by build, serve and verify."""
    f = click.option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        metavar="HOST:PORT",
        help="With --executor ray: join this Ray cluster instead of starting a local runtime.  "
        "[default: $RAY_ADDRESS]",
    )(f)
    f = click.option(
        "--executor",
        type=click.Choice(["in-process", "ray"]),
        default="in-process",
        show_default=True,
        help="Who computes missing figures: this process, or Ray tasks (pip install 'distillgen[ray]').",
    )(f)
    f = click.option(
        "--yes", "confirmed", is_flag=True, help="Start computing even when it is estimated at over an hour."
    )(f)
    f = click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Figure cache folder.  [default: SRC/.distillgen/cache]",
    )(f)
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        metavar="auto|cpu|cuda[:N]",
        help="Where to run the model; auto picks a CUDA GPU when there is one.",
    )(f)


def _allow_root(f):
    """Folders the build may read beyond the articles (safety.py): every command that reads
    what articles or an atlas name (a dataset folder, an image a figure shows)."""
    return click.option(
        "--allow-root",
        "allow_roots",
        multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        metavar="DIR",
        help="Also let the build read files in DIR (repeatable); by default only the articles folder "
        "(for an atlas, the working directory).",
    )(f)


def _grant_options(f):
    """What authors may do beyond the defaults (safety.py): shared by build and serve."""
    f = _allow_root(f)
    return click.option(
        "--no-raw-html",
        is_flag=True,
        help="Make raw HTML in articles an error (for authors you do not fully trust).",
    )(f)


def _verbosity(f):
    f = click.option("-v", "--verbose", count=True, help="Say more about each step.")(f)
    return click.option("-q", "--quiet", is_flag=True, help="Print only warnings and errors.")(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="distillgen")
def main() -> None:
    """Build Distill-style interpretability articles from Markdown."""


def run() -> None:
    """The `distillgen` command (its script, `python -m distillgen`): `main` in a process that
    ends with it."""
    try:
        main()
    finally:
        # What a build holds to the end (an atlas's plan: 500,000 objects, in reference cycles)
        # is left to the operating system, not to the collections Python runs at exit: 0.4 s of
        # a no-change build beside a 5,484-unit atlas. Not in `main`: tests call it again and
        # again in one process, whose garbage must still be collected.
        gc.freeze()


@main.command()
@SRC
@OUT
@STRICT
@click.option(
    "--archive",
    is_flag=True,
    help="Also write each article as one self-contained file, <slug>/index.archive.html.",
)
@PRUNE
@_compute_options
@_grant_options
@_verbosity
def build(src: Path, out: Path, strict: bool, archive: bool, quiet: bool, verbose: int, **compute) -> None:
    """Build the articles in SRC (default: articles) into a static site.

    Figures are computed once and kept in a cache keyed by their content; later builds take
    them from there.
    """
    if compute["no_cache"] and compute["frozen"]:
        raise click.UsageError("--no-cache recomputes everything and --frozen computes nothing; choose one")
    try:
        built = run_build(src, out, strict=strict, quiet=quiet, verbose=verbose, archive=archive, **compute)
    except KeyboardInterrupt:
        # The cache holds only whole entries and the site is written last, in one rename.
        click.echo(f"interrupted; the cache keeps what was computed, {out} was left as it was", err=True)
        sys.exit(130)
    if not built:
        sys.exit(1)


def run_build(
    src: Path | None,
    out: Path,
    *,
    atlases: tuple = (),
    archive: bool = False,
    strict: bool,
    quiet: bool,
    verbose: int,
    device: str = "auto",
    cache_dir: Path | None = None,
    no_cache: bool = False,
    frozen: bool = False,
    no_wait: bool = False,
    confirmed: bool = False,
    no_raw_html: bool = False,
    allow_roots: tuple[Path, ...] = (),
    executor: str = "in-process",
    ray_address: str | None = None,
    quick: bool = False,
    in_place: bool = False,
    warm: Warm | None = None,
    superseded: Callable[[], bool] | None = None,
    prune_cache: bool = False,
):
    """Build and report every problem; the BuildResult, or None when the build failed."""
    from distillgen.safety import Grants
    from distillgen.site import build as build_site

    reporter, progress, options = _session(
        strict,
        quiet,
        verbose,
        device=device,
        executor=executor,
        ray_address=ray_address,
        confirmed=confirmed,
        recompute=no_cache,
        frozen=frozen,
        wait=not no_wait,
        quick=quick,
        in_place=in_place,
        **({"superseded": superseded} if superseded else {}),
    )
    try:
        grants = Grants(raw_html=not no_raw_html, roots=allow_roots)
        result = build_site(
            src, out, reporter, options.log, options, cache_dir, grants, atlases, archive, warm, prune_cache
        )
    except Superseded:
        click.echo("stopped for a newer edit", err=True)
        return None
    except BuildFailed:
        click.echo(f"build failed: {len(reporter.errors)} error(s); {out} was left as it was", err=True)
        return None
    except OSError as exc:  # a disk fault where no stage expected one: still no traceback
        from distillgen.diagnostics import describe_os_error

        click.echo(f"{exc.filename or out}: error: {describe_os_error(exc)}", err=True)
        click.echo(f"build failed; {out} was left as it was", err=True)
        return None
    finally:
        progress.close()
        options.executor.close()  # a local Ray runtime stops with the build
    if not quiet:
        warnings = len(reporter.diagnostics)
        note = f", {warnings} warning(s)" if warnings else ""
        figures = result.computed + result.cached
        computed = f", {figures} figure(s) ({result.computed} computed)" if figures else ""
        computed += f", {result.rendered} of {result.rendered + result.reused} page(s) rendered"
        if result.pruned is not None:
            freed = result.pruned.freed
            size = f"{freed / 1e6:.1f} MB" if freed >= 100_000 else f"{freed / 1e3:.0f} kB"
            computed += f", {result.pruned.removed} unused figure(s) pruned ({size})"
        what = f"{len(result.articles)} article(s)" if src is not None else "the atlas"
        if src is not None and result.atlases:
            what += " and an atlas" if result.atlases == 1 else f" and {result.atlases} atlases"
        atlas = f" ({result.atlas_units} units)" if result.atlas_units else ""
        if result.search_behind:
            note += "; search index of the last build, updated once the files are still"
        click.echo(f"built {what}{atlas} into {out}/ in {result.seconds:.2f}s{computed}{note}", err=True)
    return result


def _session(strict: bool, quiet: bool, verbose: int, *, executor: str, ray_address: str | None, **options):
    """What build, atlas, serve and verify report to and compute with: a reporter echoing to
    stderr, a progress display, and the Options (`options` are Options' own fields)."""
    from distillgen.compute import Options, no_progress
    from distillgen.executors import executor as make_executor

    progress = BuildProgress()
    return (
        Reporter(strict=strict, echo=_say),
        progress,
        Options(
            progress=no_progress if quiet else progress.group,
            log=_say if verbose and not quiet else _silent,
            echo=_silent if quiet else _say,
            executor=make_executor(executor, ray_address),
            **options,
        ),
    )


def _say(message: str) -> None:
    click.echo(message, err=True)


def _silent(message: str) -> None:
    pass


PROGRESS_INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal


class BuildProgress:
    """One progress display for a whole build (or for `zoo train`, one group of steps). Each group
    of figures (a batch in this process, a round of Ray tasks) adds its work to the total when it
    starts: later rounds are known only after earlier ones, so the total grows, and done/total and
    the ETA cover everything known so far. A bar on a terminal; in a log (CI), where a bar never
    shows, a line every PROGRESS_INTERVAL seconds from a timer thread (one step of a large model
    can take longer) and one at the end of each group."""

    def __init__(self) -> None:
        self.label, self.done, self.total = "", 0, 0
        self._start: float | None = None
        self._bar: ProgressBar[int] | None = None  # click's progress bar, on a terminal
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the timer thread reads what the build thread writes

    @contextmanager
    def group(self, label: str, total: int):
        """`Options.progress`: a group of `total` units of work (image-steps, or figures)."""
        with self._lock:
            self.label, self.total = label, self.total + total
        if self._start is None:
            self._begin()
        elif self._bar is not None:
            self._bar.label, self._bar.length = label, self.total
        try:
            yield self._advance
        finally:
            if self._bar is None:
                self._report()

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def _advance(self, steps: int) -> None:
        with self._lock:
            self.done += steps
        if self._bar is not None:
            self._bar.update(steps)

    def _begin(self) -> None:
        self._start = time.monotonic()
        if sys.stderr.isatty():
            self._bar = click.progressbar(
                length=self.total, label=self.label, show_eta=True, show_percent=True, file=sys.stderr
            )
            self._bar.__enter__()
        else:
            self._timer = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._timer.start()

    def _tick(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL):
            self._report()

    def _report(self) -> None:
        from distillgen.compute import format_duration

        with self._lock:
            label, done, total = self.label, self.done, self.total
        elapsed = time.monotonic() - (self._start or time.monotonic())
        eta = f", ETA {format_duration(elapsed * (total - done) / done)}" if 0 < done < total else ""
        percent = f" ({done / total:.0%})" if total else ""
        click.echo(f"{label}: {done:,}/{total:,}{percent}, {format_duration(elapsed)} elapsed{eta}", err=True)


@main.command()
@click.argument("spec")
@click.option(
    "--layers",
    metavar="L1,L2,…",
    help="The layers to show, by name or alias.  [default: every convolutional layer]",
)
@click.option(
    "-o",
    "--out",
    default="build",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder the site is written to (replaced whole on success).",
)
@click.option(
    "--featurevis",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A feature visualization setting, e.g. steps=256 (repeatable; `distillgen directives featurevis`).",
)
@click.option(
    "--diversity",
    type=click.IntRange(*LIMITS["diversity"]),
    default=AtlasRequest.diversity,
    show_default=True,
    help="Images in each unit's diversity set (0 for none).",
)
@click.option(
    "--examples",
    type=click.IntRange(*LIMITS["examples"]),
    default=AtlasRequest.examples,
    show_default=True,
    help="Dataset examples per unit, each way: the most and the least exciting (0 for none).",
)
@click.option(
    "--dataset",
    default=AtlasRequest.dataset,
    show_default=True,
    help="Probe set of the examples: 'shapes' or 'glyphs' (a generator's sample) or a folder of images.",
)
@STRICT
@PRUNE
@_compute_options
@_allow_root
@_verbosity
def atlas(
    spec: str,
    layers: str | None,
    out: Path,
    settings: tuple[str, ...],
    diversity: int,
    examples: int,
    dataset: str,
    strict: bool,
    quiet: bool,
    verbose: int,
    **compute,
) -> None:
    """Build an atlas of the model SPEC: a page per layer and per unit (a small Microscope).

    The same as an `atlas:` entry in an articles folder's distillgen.yml, without articles.
    Figures are cached like an article's (default cache: ./.distillgen/cache).
    """
    from distillgen.units import SpecError, parse_spec

    try:
        parse_spec(spec, Path.cwd())
    except SpecError as exc:
        raise click.BadParameter(str(exc), param_hint="SPEC") from None
    request = AtlasRequest(
        spec,
        tuple(name.strip() for name in (layers or "").split(",") if name.strip()),
        _featurevis_settings(settings),
        diversity,
        examples,
        dataset,
        base=Path.cwd(),
    )
    if compute["no_cache"] and compute["frozen"]:
        raise click.UsageError("--no-cache recomputes everything and --frozen computes nothing; choose one")
    try:
        built = run_build(
            None, out, atlases=(request,), strict=strict, quiet=quiet, verbose=verbose, **compute
        )
    except KeyboardInterrupt:
        click.echo(f"interrupted; the cache keeps what was computed, {out} was left as it was", err=True)
        sys.exit(130)
    if not built:
        sys.exit(1)


def _featurevis_settings(pairs: tuple[str, ...]) -> dict:
    """`--featurevis steps=256 --featurevis size=64`, parsed like {featurevis}'s options."""
    from distillgen.options import FEATUREVIS_SETTINGS

    return _key_values(pairs, {o.name: o.parse for o in FEATUREVIS_SETTINGS}, "settings", "--featurevis")


def _key_values(pairs: tuple[str, ...], parsers: dict, what: str, option: str) -> dict:
    """The KEY=VALUE pairs of a repeatable option, each value parsed by its key's parser."""
    chosen = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        name = name.strip()
        if not equals or name not in parsers:
            hint = suggest(name, parsers) if equals else " (write KEY=VALUE)"
            raise click.BadParameter(f"'{pair}'{hint}; known {what}: {', '.join(parsers)}", param_hint=option)
        try:
            chosen[name] = parsers[name](value.strip())
        except ValueError as exc:
            raise click.BadParameter(f"{name}: {exc}", param_hint=option) from None
    return chosen


@main.command()
@click.argument("title")
@click.option(
    "-d",
    "--dir",
    "folder",
    default="articles",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder the article is created in.",
)
@click.option("--slug", help="File name without .md (default: from the title).")
def new(title: str, folder: Path, slug: str | None) -> None:
    """Create a new article called TITLE, with an example of every feature."""
    from distillgen.scaffold import ScaffoldError, create_article

    try:
        created = create_article(title, folder, slug)
    except ScaffoldError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"next: distillgen build {folder}  (or distillgen serve {folder})")


@main.command()
@SRC
@OUT
@STRICT
@_compute_options
@_grant_options
@_verbosity
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
def serve(
    src: Path, out: Path, strict: bool, quiet: bool, verbose: int, host: str, port: int, **compute
) -> None:
    """Build SRC, serve it, and rebuild and reload the page when a file changes."""
    from distillgen.serve import serve_site

    rebuild = serve_builds(src, out, strict=strict, quiet=quiet, verbose=verbose, **compute)
    serve_site(src, out, host, port, rebuild, echo=lambda message: click.echo(message, err=True))


def serve_builds(src: Path, out: Path, **options) -> Rebuild:
    """serve's builds of SRC: rebuild(quick, superseded), each in place and told what the one
    before it checked (warm.py); `options` are run_build's."""
    from distillgen.warm import Warm

    warm = Warm()
    return lambda quick, superseded: run_build(
        src, out, quick=quick, in_place=True, warm=warm, superseded=superseded, **options
    )


@main.group()
def zoo() -> None:
    """Train the embedded models."""


@zoo.command("train")
@click.argument("name", type=click.Choice(list(ZOO)))
@click.option("--seed", default=0, show_default=True, help="Seed for initialization and data.")
@click.option("--steps", default=3000, show_default=True, type=click.IntRange(1), help="Optimizer steps.")
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Weights file to write (.pt); a model card (.json) is written beside it.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def zoo_train(name: str, seed: int, steps: int, out: Path, quiet: bool) -> None:
    """Train NAME from scratch, deterministically for a given seed, on the CPU."""
    from distillgen.zoo.card import write_weights
    from distillgen.zoo.train import train

    if quiet:
        result = train(seed, steps=steps, name=name)
    else:  # a bar on a terminal, a line every 10 s in a log
        progress = BuildProgress()
        try:
            with progress.group(f"training {name} (seed {seed}), steps", steps) as advance:
                result = train(seed, steps=steps, name=name, progress=lambda step, total, loss: advance(1))
        finally:
            progress.close()
    command = f"distillgen zoo train {name} --seed {seed} --steps {steps} -o {out.name}"
    card = write_weights(result, out, seed, command)
    click.echo(
        f"wrote {out} ({card['checksum'][:12]}…): {card['accuracy']:.1%} held-out accuracy "
        f"after {result.seconds:.0f}s"
    )


@main.command()
@click.argument("spec", required=False)
def models(spec: str | None) -> None:
    """List model specs, or describe SPEC: card, layers with output shapes, checksum."""
    from distillgen.units import KNOWN_SPECS, SpecError, parse_spec

    if spec is None:
        click.echo(f"Model specs ({', '.join(ZOO)} ship with distillgen; others load on first use):")
        for known in KNOWN_SPECS:
            click.echo(f"  {known}")
        click.echo("  torchvision:<name>, lucent:inceptionv1, the zoo's: add @untrained for random weights")
        click.echo("  torchvision:<name>@weights.pth, lucent:inceptionv1@weights.pth: a state dict you have")
        click.echo("  path/model.py:factory[@weights.pth], path/model.pt (TorchScript)")
        return
    from distillgen.engine.models import ModelError, load_model

    try:
        model = load_model(parse_spec(spec, Path.cwd()))
    except (SpecError, ModelError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if model.card:
        click.echo(click.wrap_text(model.card, 100) + "\n")
    click.echo(f"spec           {model.spec}")
    click.echo(
        f"input          3×{model.input_size}×{model.input_size}, preprocessing: {model.preprocessing}"
    )
    click.echo(f"checksum       {model.checksum}")
    if model.aliases:
        click.echo("aliases        " + ", ".join(f"{a} → {n}" for a, n in model.aliases.items()))
    click.echo(f"\n{'layer (inner layers indented)':<48} {'output shape':<16} units")
    for depth, name in model.outline():
        layer = model.layer(name)
        shown = name if name == layer.name else f"{name} (= {layer.name})"
        click.echo(f"{'  ' * depth + shown:<48} {layer.shape_text:<16} {layer.channels}")


@main.command()
@click.argument("name", required=False)
def directives(name: str | None) -> None:
    """List the directives and roles, or show NAME's argument and options."""
    from distillgen.figures import DIRECTIVES, ROLES
    from distillgen.kinds import COMPUTED_FIGURES

    if name is None:
        click.echo("Directives (```{name} argument, then :option: lines, then the caption):")
        for kind in DIRECTIVES.values():
            click.echo(f"  {{{kind.name}}}".ljust(18) + kind.doc)
        click.echo("Roles ({name}`content`):")
        for role_kind in ROLES.values():
            click.echo(f"  {{{role_kind.name}}}".ljust(18) + role_kind.doc)
        click.echo("`distillgen directives NAME` shows a directive's options.")
        return
    name = name.strip("{}")
    directive, role = DIRECTIVES.get(name), ROLES.get(name)
    if directive is None:
        if role is None:
            hint = suggest(name, [*DIRECTIVES, *ROLES])
            click.echo(f"error: no directive or role '{name}'{hint}", err=True)
            sys.exit(1)
        click.echo(f"{{{role.name}}}: {role.doc}")
        return
    click.echo(f"{{{directive.name}}}: {directive.doc}")
    if directive.argument is not None:
        click.echo(f"argument: {directive.argument.doc}")
    for option in directive.declared_options():
        choices = getattr(option.parse, "choices", None)
        choices = f"; one of {', '.join(choices)}" if choices else ""
        default = "" if option.default in (None, "") else f" (default: {option.default})"
        required = " (required)" if option.required else ""
        click.echo(f"  :{option.name}:".ljust(18) + option.doc + choices + default + required)
    if directive.values:
        click.echo("values prose may quote, {value}`LABEL.FIELD`:")
        width = max(18, *(len(field) + 3 for field in directive.values))  # preference-before-1
        for field, value in directive.values.items():
            click.echo(f"  {field}".ljust(width) + value.meaning + (" (percent)" if value.percent else ""))
    if name in COMPUTED_FIGURES:
        argument, _, options = COMPUTED_FIGURES[name].partition("\n")
        use = "\n".join([f"```{{{name}}} {argument}", *options.splitlines(), "A caption.", "```"])
        click.echo("example:\n" + textwrap.indent(use, "  "))


@main.command()
@SRC
@click.option(
    "--sample",
    "count",
    type=click.IntRange(1),
    metavar="N",
    help="Verify N figures, spread over the kinds (which ones: --seed).",
)
@click.option("--all", "everything", is_flag=True, help="Verify every figure (the default).")
@click.option("--seed", default=0, show_default=True, help="Which figures --sample draws.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Verify only figures of this kind, e.g. featurevis (repeatable, or comma-separated).",
)
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="KIND=VALUE",
    help="The largest difference counted as reproduced for a kind, e.g. featurevis=0.3 (repeatable; "
    "the defaults are in the README, and each row shows the one it used).",
)
@click.option(
    "--pages",
    is_flag=True,
    help="Also the figures of the unit pages and of distillgen.yml's atlases "
    "(each unit's diversity set, kernels, examples, measures and carriers).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@_engine_options
@_allow_root
@_verbosity
def verify(
    src: Path,
    count: int | None,
    everything: bool,
    seed: int,
    kinds: tuple[str, ...],
    tolerances: tuple[str, ...],
    pages: bool,
    as_json: bool,
    quiet: bool,
    verbose: int,
    device: str,
    cache_dir: Path | None,
    confirmed: bool,
    executor: str,
    ray_address: str | None,
    allow_roots: tuple[Path, ...],
) -> None:
    """Recompute the figures of SRC (default: articles) and compare them with the cache
    (with --pages, those of its unit pages and atlases too).

    Neither the cache nor the site is touched. Each figure is compared by a measure that fits
    its kind (a feature visualization by its unit's activation, kernels and tuning curves by
    their largest difference, …). Exit status 0 when every figure is within tolerance, else 1.
    """
    import json

    from distillgen.safety import Grants
    from distillgen.verify import Report, article_figures, sample, table
    from distillgen.verify import verify as verify_figures

    if count is not None and everything:
        raise click.UsageError("--sample N verifies N figures and --all every one; choose one")
    limits = _tolerances(tolerances)
    only = _kinds(kinds)
    reporter, progress, options = _session(
        False, quiet, verbose, device=device, executor=executor, ray_address=ray_address, confirmed=confirmed
    )
    echo = options.echo
    start = time.perf_counter()
    report = Report()

    def checked(check) -> None:
        report.checks.append(check)
        where = f"{check.figure.where} {check.figure.kind} {check.figure.job.address}"
        echo(f"[{len(report.checks)}/{len(chosen)}] {where}: {check.verdict}")

    try:
        grants = Grants(roots=allow_roots)
        figures, catalog = article_figures(src, reporter, cache_dir, options.log, grants, pages)
        if only:
            figures = [figure for figure in figures if figure.kind in only]
            if not figures:
                raise click.UsageError(f"{src} has no figure of the kinds {', '.join(sorted(only))}")
        chosen = figures if count is None else sample(figures, count, seed)
        report.figures = len(figures)
        echo(f"verifying {len(chosen)} of {len(figures)} figure(s)")
        verify_figures(chosen, catalog, reporter, options, limits, checked)
    except BuildFailed:
        click.echo(f"verify failed: {len(reporter.errors)} error(s)", err=True)
        sys.exit(1)
    finally:
        progress.close()
        options.executor.close()
    report.seconds = time.perf_counter() - start
    if as_json:
        checks = [check.json() for check in report.checks]
        summary = {"figures": report.figures, "verified": len(checks), "seconds": round(report.seconds, 2)}
        click.echo(json.dumps({"ok": report.ok, "summary": summary, "figures": checks}, indent=2))
    else:
        click.echo(table(report.checks))
        click.echo(report.summary())
    if not report.ok or reporter.errors:
        sys.exit(1)


def _kinds(written: tuple[str, ...]) -> set[str]:
    """`--kind featurevis --kind weights,tuning`: the kinds verify can recompute."""
    from distillgen.verify import TOLERANCES

    kinds = {kind.strip() for value in written for kind in value.split(",") if kind.strip()}
    for kind in sorted(kinds - set(TOLERANCES)):
        known = ", ".join(sorted(TOLERANCES))
        raise click.BadParameter(
            f"unknown kind '{kind}'{suggest(kind, TOLERANCES)}; known: {known}", param_hint="--kind"
        )
    return kinds


def _tolerances(pairs: tuple[str, ...]) -> dict[str, float]:
    """`--tolerance featurevis=0.3`, one per kind."""
    from distillgen.verify import TOLERANCES, tolerance

    return _key_values(pairs, dict.fromkeys(TOLERANCES, tolerance), "kinds", "--tolerance")
