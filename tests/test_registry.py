"""The table of computed kinds (kinds.py) is complete and is the only registry: every job type,
engine, verify measure, directive and notebook function of a kind is found from it, and every
caller loads a project the same way (project.py)."""

from __future__ import annotations

import importlib
import math
from dataclasses import is_dataclass
from pathlib import Path

import pytest

from distillgen import jobs, notebook
from distillgen.compute import Options
from distillgen.diagnostics import BuildFailed, Code, Reporter
from distillgen.figures import DIRECTIVES
from distillgen.figures.base import DirectiveKind, jobs_of
from distillgen.kinds import COMPUTED_FIGURES, KINDS
from distillgen.project import Project
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
    assert kind.figures, "a kind nobody can show"
    for figure in kind.figures:
        assert figure in DIRECTIVES
        assert figure in notebook.__all__ and callable(getattr(notebook, figure)), f"notebook.{figure}"


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
    assert planned_kinds | {need.job.kind for need in article.needs} >= set(KINDS)
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
    (job,) = jobs_of(planned)
    assert (job.settings.steps, job.settings.size) == (4, 32)
    assert project.cache.root == tmp_path / "cache"
    assert Project.open(src, Reporter()).cache.root == src / Path(".distillgen/cache")
