"""The table of computed kinds (kinds.py) is complete and is the only registry: every job type,
engine, verify measure, directive and notebook function of a kind is found from it, and every
caller loads a project the same way (project.py)."""

from __future__ import annotations

import hashlib
import importlib
import math
import shutil
from dataclasses import is_dataclass
from pathlib import Path

import pytest

from distillgen import jobs, notebook
from distillgen.compute import Options
from distillgen.datasets import dataset
from distillgen.diagnostics import BuildFailed, Code, Reporter
from distillgen.figures import DIRECTIVES
from distillgen.figures.base import DirectiveKind, jobs_of
from distillgen.kinds import COMPUTED_FIGURES, KINDS
from distillgen.project import Project
from distillgen.units import PACKAGE, source_fingerprint
from distillgen.verify import TOLERANCES
from tests.conftest import write


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_computed_kind_is_complete(name):
    kind = KINDS[name]
    assert kind.job.kind == name and issubclass(kind.job, jobs.Job) and is_dataclass(kind.job)
    assert "address" in vars(kind.job), "a job says what it is about"
    assert is_dataclass(kind.job.Result) and callable(kind.job.Result.check)
    assert callable(importlib.import_module(kind.engine).compute)
    assert callable(kind.measure) and math.isfinite(kind.tolerance) and kind.tolerance >= 0
    assert TOLERANCES[name] == kind.tolerance
    read_by = {other.name for other in KINDS.values() if name in _input_kinds(other.job)}
    assert kind.figures or read_by, "a kind nobody can show, and no other kind reads"
    for figure in kind.figures:
        assert figure in DIRECTIVES
        assert figure in notebook.__all__ and callable(getattr(notebook, figure)), f"notebook.{figure}"


def _input_kinds(job_type: type[jobs.Job]) -> set[str]:
    """The kinds a job type's `inputs` name, for a job over a folder (examples and an
    ablation's top images read its ranking) or MACO's feature visualization (its spectrum)."""
    folder = jobs.Dataset("/photos", "f")
    maco = jobs.FeatureVisSettings(param="maco")
    over_folder = {
        jobs.ExamplesJob: jobs.ExamplesJob("m", "f", "l", 0, folder),
        jobs.AblationJob: jobs.AblationJob("m", "f", "l", 0, (), "examples", folder),
        jobs.FeatureVisJob: jobs.FeatureVisJob("m", "f", "l", 0, settings=maco, spectrum=folder),
    }
    job = over_folder.get(job_type)
    return {each.kind for each in job.inputs()} if job else set()


def test_the_table_lists_every_job_type_and_every_directive_that_computes():
    job_types = {
        value
        for value in vars(jobs).values()
        if isinstance(value, type) and issubclass(value, jobs.Job) and value is not jobs.Job
    }
    assert job_types == {kind.job for kind in KINDS.values()}
    planning = {name for name, kind in DIRECTIVES.items() if type(kind).plan is not DirectiveKind.plan}
    assert planning == set(COMPUTED_FIGURES)


def test_every_use_in_the_table_plans_its_kind_and_only_lacks_the_cache(tmp_path):
    """Each directive's use, as the table gives it (the examples test_kinds starts from), checks
    and plans a job of its kind; with --frozen and an empty cache the only errors say the
    figure is not cached (by their code, not their words)."""
    body = "".join(
        f"```{{{name}}} {use.partition(chr(10))[0]}\n{use.partition(chr(10))[2]}\nA caption.\n```\n\n"
        for name, use in COMPUTED_FIGURES.items()
    )
    src = write(
        tmp_path / "src" / "a.md",
        f"---\ntitle: Uses\ndictionaries:\n  m4: {{layer: mixed4, features: 16, k: 2}}\n---\n\n{body}",
    ).parent
    reporter = Reporter()
    project = Project.open(src, reporter, Options(frozen=True), cache_dir=tmp_path / "cache")
    (article,) = project.load_articles()
    project.plan([article])
    planned_kinds = {job.kind for _name, _line, planned in article.figures() for job in jobs_of(planned)}
    # the dictionary's figure waits for its training: its job is the dictionary's own
    shown = {name for name, kind in KINDS.items() if kind.figures}
    assert planned_kinds | {need.job.kind for need in article.needs} >= shown
    with pytest.raises(BuildFailed):
        project.compute([article])
    assert reporter.errors and all(error.code is Code.UNCACHED for error in reporter.errors)
    assert reporter.has(Code.UNCACHED)


def test_a_project_gives_every_article_its_site_config_defaults(tmp_path):
    src = write(tmp_path / "src" / "distillgen.yml", "featurevis: {steps: 4, size: 32}\n").parent
    write(src / "a.md", "---\ntitle: A\n---\n\n```{featurevis} mixed3:1\nA caption.\n```\n")
    project = Project.open(src, Reporter(), cache_dir=tmp_path / "cache")
    (article,) = project.load_articles()
    project.plan([article])
    ((_name, _line, planned),) = article.figures()
    job, measures = jobs_of(planned)  # the image, and its faithfulness measures
    assert (job.settings.steps, job.settings.size) == (4, 32)
    assert measures.kind == "faithfulness" and measures.image == job.key
    assert project.cache.root == tmp_path / "cache"
    assert Project.open(src, Reporter()).cache.root == src / Path(".distillgen/cache")


# -- keys that cover their inputs ------------------------------------------------------------


def test_editing_a_helper_the_stimuli_draw_with_changes_their_key(tmp_path):
    # Reproduced bug: built-in stimuli were keyed by stimuli.py alone, but drawn by helpers of
    # zoo/shapes_data.py and zoo/glyphs_data.py: an edit there changed the images, not the key.
    package = tmp_path / "distillgen"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("weights", "templates", "__pycache__"))
    before = source_fingerprint("distillgen.stimuli", package)
    assert before == source_fingerprint("distillgen.stimuli")  # the copy is the package as it is
    for helper, unrelated in (("zoo/shapes_data.py", "site.py"), ("zoo/glyphs_data.py", "zoo/shapes_net.py")):
        (package / unrelated).write_text((package / unrelated).read_text() + "\n# an unrelated edit\n")
        assert source_fingerprint("distillgen.stimuli", package) == before
        (package / helper).write_text((package / helper).read_text() + "\n# an edit of a drawing helper\n")
        assert source_fingerprint("distillgen.stimuli", package) != before
        before = source_fingerprint("distillgen.stimuli", package)
    # a probe set's generator imports nothing of the package: keyed by its bytes, as always
    shapes = PACKAGE / "zoo" / "shapes_data.py"
    assert dataset("shapes", 10, 0, tmp_path).fingerprint == hashlib.sha256(shapes.read_bytes()).hexdigest()


def test_a_tuning_figure_is_keyed_by_all_the_code_that_draws_its_stimuli(tmp_path):
    src = write(
        tmp_path / "src" / "a.md", "---\ntitle: A\n---\n\n```{tuning} mixed4:1\nA caption.\n```\n"
    ).parent
    project = Project.open(src, Reporter(), cache_dir=tmp_path / "cache")
    (article,) = project.load_articles()
    project.plan([article])
    ((_name, _line, planned),) = article.figures()
    (job,) = jobs_of(planned)
    assert job.sweep.family_fingerprint == source_fingerprint("distillgen.stimuli")
    stimuli_alone = hashlib.sha256((PACKAGE / "stimuli.py").read_bytes()).hexdigest()
    assert job.sweep.family_fingerprint != stimuli_alone
