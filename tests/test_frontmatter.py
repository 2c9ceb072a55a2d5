"""Front matter validation: errors name the key and its line."""

import datetime as dt
from pathlib import Path

from distillgen.diagnostics import Reporter
from distillgen.source.frontmatter import parse_front_matter

PATH = Path("articles/x.md")


def check(text: str):
    reporter = Reporter()
    front = parse_front_matter(text, PATH, 2, reporter)
    return front, [str(d) for d in reporter.diagnostics]


def test_valid_front_matter():
    front, problems = check(
        "title: Zoom In\n"
        "description: Circuits.\n"
        "authors:\n"
        "  - Chris Olah\n"
        "  - name: Nick Cammarata\n"
        "    url: https://example.org\n"
        "    affiliations: [OpenAI, Distill]\n"
        "date: 2020-03-10\n"
        "doi: 10.23915/distill.00024.001\n"
        "bibliography: refs.bib\n"
        "model: shapes\n"
    )
    assert problems == []
    assert front.title == "Zoom In"
    assert [a.name for a in front.authors] == ["Chris Olah", "Nick Cammarata"]
    assert front.authors[1].affiliations == ("OpenAI", "Distill")
    assert front.affiliations == ["OpenAI", "Distill"]
    assert front.date == dt.date(2020, 3, 10)
    assert front.bibliography == Path("articles/refs.bib").resolve()  # symlinks followed, checked inside
    assert front.model == "shapes"


def test_errors_name_the_key_and_point_at_its_line():
    _, problems = check("title: T\nauthors:\n  - name: A\n    urll: x\ndate: 2026-13-01\n")
    assert problems == [
        "articles/x.md:5: error: front matter unknown key 'authors[0].urll' (did you mean 'url'?)",
        "articles/x.md:6: error: front matter 'date' must be a date like 2026-11-24, not '2026-13-01'",
    ]


def test_unknown_key_is_a_warning_with_suggestion():
    _, problems = check("title: T\nbibliografy: refs.bib\n")
    assert problems[0].startswith(
        "articles/x.md:3: warning: unknown front matter key 'bibliografy' (did you mean 'bibliography'?)"
    )


def test_missing_title_and_wrong_types():
    _, problems = check("description: [a, b]\nauthors: Chris\n")
    assert "articles/x.md:2: error: front matter 'description' must be text, not a list" in problems
    assert "articles/x.md:3: error: front matter 'authors' must be a list" in problems
    assert "articles/x.md:2: error: front matter needs a 'title'" in problems


def test_malformed_yaml_points_at_the_problem():
    _, problems = check("title: T\nauthors: [a, b\ndate: 2020-01-01\n")
    assert len(problems) == 1
    assert problems[0].startswith("articles/x.md:")
    assert ": error: malformed front matter:" in problems[0]


def test_missing_front_matter():
    front, problems = check(None)
    assert problems == [
        "articles/x.md:1: error: missing front matter: start the file with '---', 'title: …', '---'"
    ]
    assert front.title == "x"  # the body is still checked, so every error shows in one build


def test_model_spec_is_checked_where_it_is_written():
    _, problems = check("title: T\nmodel: shapes@7\n")
    assert problems == [
        "articles/x.md:3: error: front matter 'model': no shipped weights for 'shapes@7': the shapes seeds "
        "are shapes@0, shapes@1; train another with 'distillgen zoo train shapes --seed N -o FILE' and use FILE"
    ]
    _, problems = check("title: T\nmodel: nets/missing.py:build\n")
    assert problems == [
        "articles/x.md:3: error: front matter 'model': file not found: articles/nets/missing.py"
    ]
    front, problems = check("title: T\nmodel: torchvision:googlenet\n")
    assert problems == [] and front.model == "torchvision:googlenet"
