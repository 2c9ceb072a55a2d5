"""distillgen's figures in a MyST project: mystmd (from the npm registry) runs the executable
plugin `distillgen-myst` on examples/myst-book, figures come back numbered with their captions
and images, a distillgen build of the same directive computes nothing, and an author's mistake
is reported with its page and line while the other pages build."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write

from distillgen import myst, notebook

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "myst-book"
MYSTMD = "1.8.3"  # the mystmd this plugin is tested with
TIMEOUT = 600  # seconds for one `myst build`: a hang fails, it never eats a CI run


@pytest.fixture(scope="session")
def myst_command() -> Path:
    """mystmd, installed once from the npm registry into .mystmd/ (ignored by git)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: mystmd comes from the npm registry")
    prefix = ROOT / ".mystmd"
    command = prefix / "node_modules" / ".bin" / "myst"
    if (
        not command.exists()
        or f'"version": "{MYSTMD}"' not in (prefix / "node_modules" / "mystmd" / "package.json").read_text()
    ):
        subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"mystmd@{MYSTMD}"],
            check=True,
            timeout=300,
            capture_output=True,
        )
    return command


def myst_build(command: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    """`myst build` in `project`, with this environment's `distillgen-myst` on the PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [str(command), "build", *args],
        cwd=project,
        env={**os.environ, "PATH": path, "DISTILLGEN_DEVICE": "cpu"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def book(myst_command: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The example book, with a page holding a mistake, exported by mystmd (JATS: its site
    themes are downloaded from api.mystmd.org, which no test may rely on)."""
    project = tmp_path_factory.mktemp("myst") / "book"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("_build", "exports", ".distillgen"))
    write(project / "distillgen.yml", "featurevis: {steps: 8}\n")  # quick nodes
    write(project / "mistake.md", "# A mistake\n\n```{featurevis} mixed4:52\n:steps: many\nA caption.\n```\n")
    result = myst_build(myst_command, project, "--jats")
    assert result.returncode == 0, result.stdout + result.stderr
    return project, result


def test_the_plugin_offers_every_computed_directive_with_its_options():
    offered = myst.spec()
    names = {d["name"]: d for d in offered["directives"]}
    assert set(names) >= {"featurevis", "circuit", "weights", "tuning", "examples", "ablation"}
    assert {"attribution", "universality", "dictionary"} <= set(names)
    assert [r["name"] for r in offered["roles"]] == ["unit"]
    assert {"label", "steps", "check", "model"} <= set(names["featurevis"]["options"])
    assert names["circuit"]["body"]["type"] == "myst"  # the caption, parsed by MyST


def test_mystmd_shows_the_figures_numbered_with_their_captions_and_images(book):
    project, result = book
    assert "distillgen (distillgen.plugin) loaded: 9 directives, 1 role" in result.stdout
    xml = (project / "exports" / "curves.xml").read_text()
    figures = re.findall(
        r"<label>Figure\s(\d+):</label>\s*(.*?)</p>", xml, flags=re.S
    )  # \s: a no-break space
    captions = [re.sub(r"<[^>]+>", "", caption).strip() for _, caption in figures]
    assert [number for number, _ in figures] == ["1", "2", "3"]
    assert captions[0] == "A curve detector and a line detector, by feature visualization."
    assert captions[1].startswith("Its four strongest mixed3 inputs.")
    assert re.search(r'<xref ref-type="fig" rid="figure-1">Figure\s1</xref>', xml)  # {numref} resolves
    images = re.findall(r'xlink:href="(files/[^"]+)"', xml)
    assert len(images) == 5  # the {unit} role's, two feature visualizations, the circuit, the tuning curve
    for image in images:
        assert (project / "exports" / image).stat().st_size > 0
    drawings = [project / "exports" / i for i in images if i.endswith(".svg")]
    assert len(drawings) == 2
    for drawing in drawings:  # a drawing stands alone: its styles and its nodes' images inside
        text = drawing.read_text()
        assert "<style><![CDATA[" in text and "narrow" not in text.split(">", 1)[0]
    assert "data:image/png;base64," in max((d.read_text() for d in drawings), key=len)


def test_a_mistake_is_reported_with_its_page_and_line_and_the_other_pages_build(book):
    _project, result = book
    output = result.stdout + result.stderr
    assert "mistake.md" in output
    assert "line 4: error: bad value for ':steps:' in {featurevis}" in output
    assert "Traceback" not in output


def test_a_figure_made_by_mystmd_is_not_computed_again_by_a_build_or_a_notebook(book, tmp_path: Path):
    project, _result = book
    cache = project / ".distillgen" / "cache"
    made = {json.loads(p.read_text())["key"] for p in cache.glob("objects/*/*/record.json")}
    text = "```{featurevis} mixed4:52, mixed4:48\nA caption.\n```\n"
    src = write(tmp_path / "src" / "a.md", f"---\ntitle: The same figure\n---\n\n{text}").parent
    write(src / "distillgen.yml", "featurevis: {steps: 8}\n")
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(cache), "--verbose")
    assert result.exit_code == 0, result.output
    shown = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    assert shown and {record["key"] for record in shown} <= made  # its figure: keyed alike, not computed
    assert "computing shapes: featurevis of 2 units on cpu" not in result.output  # (its pages: their own)
    figure = notebook.featurevis("shapes", "mixed4:52, mixed4:48", project=notebook.Project(project))
    assert figure.computed == 0 and figure.cached == len(figure.jobs)


def test_myst_build_html_shows_the_figures_in_the_default_theme(book, myst_command: Path):
    project, _result = book
    result = myst_build(myst_command, project, "--html")
    output = result.stdout + result.stderr
    if "api.mystmd.org" in output and ("ENOTFOUND" in output or "failed" in output):
        pytest.skip("mystmd downloads its site theme from api.mystmd.org, which this machine cannot reach")
    assert result.returncode == 0, output
    pages = {p: p.read_text() for p in (project / "_build" / "html").rglob("*.html")}
    page = next(text for text in pages.values() if "A curve detector and a line detector" in text)
    assert re.search(r"Figure\s1", page) and re.search(r"Figure\s3", page)
    assert len(re.findall(r'<img[^>]+src="[^"]+\.(?:png|svg)"', page)) >= 4


def test_the_unit_role_is_an_inline_image_linked_to_itself_and_a_value_on_two_lines_is_refused(book):
    project, _result = book
    (link,) = myst.role({"body": "mixed4:52", "node": {"position": {"start": {"line": 7}}}}, project)
    image, code = link["children"]
    assert link["type"] == "link" and image["type"] == "image" and link["url"] == image["url"]
    assert (project / image["url"].lstrip("/")).is_file() and code["value"] == "mixed4:52"
    data = {
        "options": {"label": "fig-x", "stimulus": "curve\n```\n"},
        "node": {"position": {"start": {"line": 27}}},
    }
    with pytest.raises(myst.AuthorError, match=r"line 29: error: the value of ':stimulus:' must be one line"):
        myst.directive("tuning", {**data, "arg": "mixed4:52"}, project)
