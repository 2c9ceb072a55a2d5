"""distillgen.notebook: figures from Python share the build's cache, markup and messages; the
example notebook runs headless."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, run_cli, write
from nbclient import NotebookClient

from distillgen.diagnostics import Reporter
from distillgen.notebook import (
    FigureError,
    Project,
    ablation,
    directive_text,
    examples,
    featurevis,
    scoped_css,
    tuning,
)
from distillgen.site import build

FRONT = "---\ntitle: Findings\n---\n\n"


def page_figures(out: Path, slug: str) -> list[str]:
    """The page's <figure> elements, its copied files inlined as the notebook inlines them."""
    page = (out / slug / "index.html").read_text(encoding="utf-8")

    def inline(match: re.Match) -> str:
        data = base64.b64encode((out / slug / match[1]).read_bytes()).decode()
        return f'"data:image/png;base64,{data}"'

    return [
        re.sub(r'"(figures/[^"]+\.png)"', inline, f) for f in re.findall(r"<figure .*?</figure>", page, re.S)
    ]


def test_figures_from_python_are_taken_from_the_cache_and_look_as_on_the_page(tmp_path):
    project = Project(tmp_path / "articles")
    project.articles.mkdir()
    figures = [
        featurevis("shapes", "mixed3:0", diversity=2, steps=4, size=32, project=project),
        tuning("shapes", "mixed3:0,1", stimulus="line", range=(0, 180, 4), project=project),
        examples("shapes", "mixed3:0", count=40, top=3, project=project),
        ablation("shapes", "mixed3:0", edit="zero conv2:3,4", count=40, top=4, project=project),
    ]
    # a feature visualization is two jobs: its images and their faithfulness measures
    assert [(f.computed, f.cached) for f in figures] == [(2, 0), (1, 0), (1, 0), (1, 0)]
    again = featurevis("shapes", "mixed3:0", diversity=2, steps=4, size=32, project=project)
    assert (again.computed, again.cached) == (0, 2) and again.html == figures[0].html
    measures = again.measures["mixed3:0"]
    assert len(measures.specificity) == 2 and measures.units == 64  # each image of the set
    assert again.values["mixed3:0"].images == ("image0.png", "image1.png")  # the images, not the measures

    write(project.articles / "findings.md", FRONT + "\n".join(f.directive() for f in figures))
    built = build(project.articles, tmp_path / "out", Reporter(), cache_dir=None)
    assert (built.computed, built.cached) == (0, 5)  # every figure from the notebook's cache entries

    shown = page_figures(tmp_path / "out", "findings")
    assert len(shown) == 4
    number = re.compile(r'<span class="figure-number">Figure \d+</span>')
    for figure, markup in zip(figures, shown, strict=True):
        assert number.sub("", figure.html) == number.sub("", markup)
        assert '"figures/' not in figure.html  # no file the notebook could not show
    assert all("data:image/png;base64," in figure.html for figure in figures[:3])
    recorded = json.loads((tmp_path / "out" / "findings" / "figures.json").read_text())["figures"]
    assert [r for f in figures for r in f.record] == recorded


def test_a_notebook_figure_has_the_site_configs_defaults_so_the_build_computes_nothing(tmp_path):
    project = Project(tmp_path / "articles")
    write(project.articles / "distillgen.yml", "model: shapes\nfeaturevis: {steps: 4, size: 32}\n")
    figure = featurevis("shapes", "mixed3:1", project=project)  # no settings: the site config's
    assert figure.computed == 2  # the image and its measures
    assert (figure.jobs[0].settings.steps, figure.jobs[0].settings.size) == (4, 32)
    write(project.articles / "a.md", FRONT + "```{featurevis} mixed3:1\n```\n")  # model from the config too
    assert build(project.articles, tmp_path / "out", Reporter(), cache_dir=None).cached >= 1
    recorded = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    assert recorded == figure.record  # the notebook's artifact (key, creation, seconds), not a new one


def test_values_and_the_directive(tmp_path):
    project = Project(tmp_path / "articles")
    curves = tuning("shapes", "mixed3:0,1", stimulus="line", range=(0, 90, 3), project=project)  # 90° is 0°
    result = curves.values["mixed3:0,1"]
    assert result.values == (0.0, 30.0, 60.0) and len(result.responses) == 3 and len(result.responses[0]) == 2
    assert max(max(row) for row in result.responses) > 0
    assert (
        curves.directive() == "```{tuning} mixed3:0,1\n:model: shapes\n:stimulus: line\n:range: 0 90 3\n```\n"
    )
    assert repr(curves.directive()) == str(curves.directive())  # shows as Markdown, not a quoted string
    assert curves.record[0]["job"]["units"] == [0, 1] and curves.record[0]["versions"]["torch"]
    html = curves._repr_html_()
    assert html.startswith('<div class="distillgen-figure"><style>') and "<svg" in html


MISTAKES = [
    ("featurevis", "mixd3:0", {}),
    ("featurevis", "mixed3:0", {"stepz": 4}),
    ("featurevis", "mixed3:0", {"steps": "many", "size": 0}),
    ("tuning", "mixed3:0,1", {"plot": "polar", "stimulus": "grating"}),
    ("ablation", "mixed4:48", {}),
    ("examples", "mixed3:0,1", {}),
]


@pytest.mark.parametrize(("kind", "argument", "options"), MISTAKES)
def test_mistakes_raise_the_messages_the_build_prints(tmp_path, kind, argument, options):
    project = Project(tmp_path / "articles")
    with pytest.raises(FigureError) as raised:
        project.figure(kind, "shapes", argument, **options)
    src = write(project.articles / "a.md", FRONT + directive_text(kind, "shapes", argument, options)).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    printed = [line.split(": error: ", 1)[1] for line in result.stderr.splitlines() if ": error: " in line]
    assert printed and str(raised.value).splitlines() == printed


def test_the_page_stylesheet_is_limited_to_the_figure():
    css = scoped_css(
        ":root { --x: 1; }\nbody { margin: 0; }\n.a, figure p { color: red; }\n"
        "@media (min-width: 768px) { html { font-size: 16px; } .b { top: 0; } }",
        ".s",
    )
    assert css.splitlines()[:3] == [
        ".s { --x: 1; }",
        ".s { margin: 0; }",
        ".s .a, .s figure p { color: red; }",
    ]
    assert "@media (min-width: 768px) { .s { font-size: 16px; }\n.s .b { top: 0; } }" in css


def test_the_example_notebook_runs_headless(tmp_path):
    project = tmp_path / "project"
    (project / "articles").mkdir(parents=True)
    shutil.copytree(ROOT / "examples", project / "examples")
    notebook = nbformat.read(project / "examples" / "explore.ipynb", as_version=4)
    NotebookClient(
        notebook, kernel_name="python3", resources={"metadata": {"path": str(project / "examples")}}
    ).execute()

    def outputs(source_start: str) -> list[dict]:
        (cell,) = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source_start)]
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
        return cell.outputs

    def html(source_start: str) -> str:
        (output,) = [o for o in outputs(source_start) if "text/html" in o.get("data", {})]
        return output["data"]["text/html"]

    def printed(source_start: str) -> str:
        return "".join(o.text for o in outputs(source_start) if o.output_type == "stream")

    grid = html("grid = featurevis")
    assert grid.count("data:image/png;base64,") >= 2 and '<figure class="l-body featurevis">' in grid
    values = printed("for address")
    assert re.search(r"mixed3:0 activation \d\S* specificity \d+ of 64", values)
    assert "computed 4 cached 0 on cpu" in values  # two images and their measures
    assert "<svg" in html("curves = tuning") and "examples-grid" in html('examples("shapes"')
    assert "peak responses {0: " in printed("peaks")
    directive = printed("print(curves.directive())")
    assert directive == "```{tuning} mixed3:0,1\n:model: shapes\n:stimulus: line\n:range: 0 180 13\n```\n\n"
    assert printed("try:") == (
        "FigureError: unknown layer 'mixd3' in model 'shapes' (did you mean 'mixed3'?); "
        "layers: conv1, conv2, mixed3, mixed4, fc\n"
    )
    # The notebook cached into the project's articles folder: the directive it printed builds from there.
    write(project / "articles" / "curves.md", FRONT + directive)
    built = build(project / "articles", tmp_path / "out", Reporter())
    assert (built.computed, built.cached) == (0, 1)
