"""Figures from Python (a notebook), sharing the build's stages and cache.

    from distillgen.notebook import featurevis
    figure = featurevis("shapes", "mixed4:52,30", steps=256)   # shows the grid in Jupyter
    figure.values["mixed4:52"]                                 # the typed result
    print(figure.directive())                                  # paste it into an article

Each function writes the directive an article would hold (the model as `:model:`, keyword
arguments as options: `other_layer=` is `:other-layer:`) and runs it as a one-figure article
in the project's articles folder: the same parser, the kind's declared options and `check`,
`plan`, compute through the engine and cache, `follow_up` and `render`. So a mistake raises
`FigureError` with the message the build would print, and a figure computed here is in the
cache the build reads: pasted into an article (with the same `featurevis:` front matter
defaults), the build takes it from there.
"""

from __future__ import annotations

import base64
import functools
import json
import mimetypes
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from distillgen import project
from distillgen.compute import Options, records
from distillgen.diagnostics import BuildFailed, Reporter
from distillgen.figures import DIRECTIVES
from distillgen.figures.base import jobs_of
from distillgen.render.page import templates_dir

SCOPE = "distillgen-figure"  # the class of the element a figure is shown in


class FigureError(ValueError):
    """The directive has mistakes: the build's messages, one per line."""


class DirectiveText(str):
    """Markdown that shows as itself (not as a quoted string) at the end of a notebook cell."""

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Project:
    """Where figures are cached and files resolve: an articles folder, as `distillgen build`
    reads it (the cache is `<articles>/.distillgen/cache` unless `cache_dir` says otherwise)."""

    articles: Path
    cache_dir: Path | None = None
    device: str = "auto"

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """The nearest `articles/` folder at or above `start` (default: the working directory),
        which is what `distillgen build` reads when run from the project's root; else
        `./articles`, as the build would."""
        start = (start or Path.cwd()).resolve()
        found = next((p / "articles" for p in (start, *start.parents) if (p / "articles").is_dir()), None)
        return cls(found or start / "articles")

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.articles / project.CACHE

    def figure(
        self, kind: str, model: str | None, argument: str, caption: str = "", **options: object
    ) -> Figure:
        """The figure ```{kind} argument``` with `:model: model` (none when `model` is None)
        and `options`, computed (or taken from the cache) and rendered; FigureError with the
        build's messages."""
        text = directive_text(kind, model, argument, options, caption)
        reporter = Reporter()
        folder = self.articles.resolve()
        # the build's pipeline on a one-figure article: distillgen.yml's defaults, the cache
        opened = project.Project.open(folder, reporter, Options(device=self.device), cache_dir=self.cache)
        article = opened.article(f"---\ntitle: Notebook\n---\n{text}", folder / "notebook.md")
        try:
            _raise_errors(reporter)
            assert article is not None  # else an error was reported
            opened.plan([article])
            outcome = opened.compute([article])
        except BuildFailed:
            _raise_errors(reporter)
            raise
        for diagnostic in reporter.diagnostics:  # a failed prediction, a damaged cache entry
            warnings.warn(diagnostic.message, stacklevel=3)
        body, _footnotes, _references = article.render(outcome.artifacts)
        (_kind, _line, planned), *_ = article.figures()
        jobs = jobs_of(planned)
        return Figure(
            kind=kind,
            text=text,
            html=inline_files(body.strip(), article.assets),
            jobs=jobs,
            results=tuple(outcome.artifacts[job.key].result(job) for job in jobs),
            # as figures.json holds them, whether computed now (tuples) or read from the cache
            record=json.loads(json.dumps(records((job.key for job in jobs), outcome.artifacts))),
            computed=outcome.computed,
            cached=outcome.cached,
        )


@dataclass(frozen=True)
class Figure:
    """A computed figure: its page markup (files inlined), its jobs and typed results, and
    the provenance records that `figures.json` would list."""

    kind: str
    text: str  # the directive
    html: str  # the figure as a page shows it, with files as data: URIs
    jobs: tuple
    results: tuple  # each job's typed result (jobs.py), in the same order
    record: list[dict]
    computed: int  # jobs computed for this figure now
    cached: int  # jobs taken from the cache

    @property
    def values(self) -> dict[str, object]:
        """Each job's typed result by its address (`mixed4:52`, `mixed3 -> mixed4:52`); a job
        of another model than the figure's first is named `model address`. Where jobs share an
        address (a feature visualization, its measures, its examples), the figure's own first."""
        return self._by_address(lambda job: True)

    @property
    def measures(self) -> dict[str, object]:
        """The faithfulness measures of each feature visualization (FaithfulnessResult), by
        its unit's address."""
        return self._by_address(lambda job: job.kind == "faithfulness")

    def _by_address(self, wanted) -> dict[str, object]:
        first = self.jobs[0].model
        found: dict[str, object] = {}
        for job, result in zip(self.jobs, self.results, strict=True):
            if wanted(job):
                found.setdefault(job.address if job.model == first else f"{job.model} {job.address}", result)
        return found

    def directive(self) -> DirectiveText:
        """The directive that makes this figure in an article."""
        return DirectiveText(self.text)

    def _repr_html_(self) -> str:
        return f'<div class="{SCOPE}"><style>{page_css()}</style>{self.html}</div>'


def directive_text(
    kind: str, model: str | None, argument: str, options: dict[str, object], caption: str = ""
) -> str:
    """```{kind} argument, `:model:` and an option per keyword (`other_layer` is
    `:other-layer:`), the caption, and the closing fence."""
    if kind not in DIRECTIVES:
        raise FigureError(f"unknown directive '{{{kind}}}'")
    lines = [f"```{{{kind}}} {_one_line('the argument', argument)}"]
    if model is not None:  # a {dictionary} names its model in its declaration instead
        lines.append(f":model: {_one_line('model', model)}")
    for name, value in options.items():
        name = name.replace("_", "-")
        lines.append(f":{name}: {_one_line(name, _option_text(value))}")
    return "\n".join([*lines, *([caption.strip()] if caption.strip() else []), "```", ""])


def _option_text(value: object) -> str:
    """An option as an author writes it: true/false, numbers, lists joined by spaces
    (`range=(0, 360, 25)`), mappings as `key=value, …` (`params={"radius": 10}`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


def _one_line(what: str, text: str) -> str:
    if "\n" in str(text) or "```" in str(text):
        raise FigureError(f"{what} must be one line without ```: {text!r}")
    return str(text).strip()


def _raise_errors(reporter: Reporter) -> None:
    if reporter.errors:
        raise FigureError("\n".join(error.message for error in reporter.errors))


def inline_files(html: str, files: dict[str, Path]) -> str:
    """The page's file URLs replaced by data: URIs, so the figure needs no server."""
    for url, path in files.items():
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        html = html.replace(f'"{url}"', f'"data:{kind};base64,{data}"')
    return html


@functools.cache
def page_css() -> str:
    """The page's stylesheet, limited to the figure's element: a notebook shows outputs in its
    own page, whose look the site's rules for `body` or `figure` must not change."""
    return scoped_css((templates_dir() / "static" / "distill.css").read_text(encoding="utf-8"), f".{SCOPE}")


def scoped_css(css: str, scope: str) -> str:
    """Every rule of `css` limited to `scope`; `:root`, `html` and `body` rules apply to the
    scope itself; `@media` blocks keep their condition."""
    scoped = []
    for prelude, body in css_rules(css):
        if prelude.startswith("@"):
            scoped.append(f"{prelude} {{ {scoped_css(body, scope)} }}")
        else:
            selectors = ", ".join(_scope(selector.strip(), scope) for selector in prelude.split(","))
            scoped.append(f"{selectors} {{{body}}}")
    return "\n".join(scoped)


def css_rules(css: str) -> Iterator[tuple[str, str]]:
    """(prelude, body) of each top-level rule."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    depth, start, prelude = 0, 0, ""
    for index, char in enumerate(css):
        if char == "{":
            if depth == 0:
                prelude, start = css[start:index].strip(), index + 1
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                yield prelude, css[start:index]
                start = index + 1


def _scope(selector: str, scope: str) -> str:
    for root in (":root", "html", "body"):
        if selector == root or selector.startswith(f"{root} "):
            return scope + selector[len(root) :]
    return f"{scope} {selector}"


# -- one function per computed directive ----------------------------------------------------


def _mirror(kind: str):
    def make(
        model: str, argument: str, /, *, caption: str = "", project: Project | None = None, **options: object
    ) -> Figure:
        return (project or Project.find()).figure(kind, model, argument, caption, **options)

    make.__name__ = make.__qualname__ = kind
    make.__doc__ = (
        f"{DIRECTIVES[kind].doc}\n\n```{{{kind}}} ARGUMENT with `:model: MODEL` and the keyword "
        f"arguments as options (`distillgen directives {kind}` lists them); `caption=` is the "
        "caption, `project=` where it is cached (default: `Project.find()`)."
    )
    return make


featurevis = _mirror("featurevis")
weights = _mirror("weights")
circuit = _mirror("circuit")
tuning = _mirror("tuning")
examples = _mirror("examples")
ablation = _mirror("ablation")
attribution = _mirror("attribution")
universality = _mirror("universality")


def dictionary(
    name: str, /, *, caption: str = "", project: Project | None = None, **options: object
) -> Figure:
    return (project or Project.find()).figure("dictionary", None, name, caption, **options)


dictionary.__doc__ = (
    f"{DIRECTIVES['dictionary'].doc}\n\n```{{dictionary}} NAME, a dictionary the project declares "
    "(distillgen.yml's `dictionaries:`); the keyword arguments are its options."
)

__all__ = [
    "Figure",
    "FigureError",
    "Project",
    "ablation",
    "attribution",
    "circuit",
    "dictionary",
    "examples",
    "featurevis",
    "tuning",
    "universality",
    "weights",
]
