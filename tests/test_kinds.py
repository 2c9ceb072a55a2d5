"""The kind contract: every directive and role kind, given what an author gets wrong, reports
`path:line: error:` and never raises out of check, plan or render."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distillgen.figures import DIRECTIVES, ROLES
from distillgen.kinds import COMPUTED_FIGURES
from distillgen.options import FEATUREVIS_SETTINGS
from tests.conftest import run_cli, write

HEADER = "---\ntitle: Kinds\n---\n\n"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One cache for the module: the shapes models are described once, nothing is computed."""
    return tmp_path_factory.mktemp("kinds-cache")


def build(tmp_path: Path, cache: Path, body: str, *args: str):
    src = write(tmp_path / "src" / "a.md", HEADER + body).parent
    (src / "scale.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    return src / "a.md", run_cli(
        "build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(cache), *args
    )


def assert_only_path_line_errors(path: Path, result) -> None:
    """Exit 1 with at least one error, and every line of stderr a `path:line:` diagnostic."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(rf"^{re.escape(str(path))}:\d+: error: ", line)]
    assert errors, result.stderr
    unexpected = [
        line
        for line in lines
        if not re.match(rf"^{re.escape(str(path))}:\d+: (error|warning): ", line)
        and not line.startswith("build failed")
    ]
    assert not unexpected, result.stderr


def test_the_same_bad_role_twice_is_two_errors_not_a_traceback(tmp_path, cache):
    # Reproduced bug: the second, identical error was de-duplicated, so the second role passed
    # for checked and its plan ran on data that check never wrote (KeyError: 'spec').
    path, result = build(tmp_path, cache, "A {unit}`mixed3` and {unit}`mixed3`.\n")
    assert_only_path_line_errors(path, result)
    assert f"{path}:5: error: {{unit}}: 'mixed3' is not a unit address" in result.stderr


def test_bad_featurevis_defaults_are_errors_whatever_the_article_uses(tmp_path, cache):
    # Reproduced bug: front matter defaults were only validated by kinds that read them.
    src = write(
        tmp_path / "src" / "a.md",
        "---\ntitle: Defaults\nfeaturevis: {stpes: 3, size: huge}\n---\n\n```{note}\nA note.\n```\n",
    ).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(cache))
    path = src / "a.md"
    assert_only_path_line_errors(path, result)
    assert f"{path}:3: error: unknown key 'featurevis.stpes' (did you mean 'steps'?)" in result.stderr
    assert f"{path}:3: error: bad value for 'featurevis.size': expected a whole number, not 'huge'" in (
        result.stderr
    )


# -- property: wrong arguments and option values, for every registered kind ------------------

BAD_ARGUMENTS = ["", "!!", "mixed3:999", "nolayer:1", "mixed3:5-1", "conv2 ->", "mixed4 -> conv2:1", "a b c"]
BAD_VALUES = ["", "-1", "0", "nonsense", "999999", "1e9", "mixed9:1", "zero", "a -> b -> c", "yes please"]


TITLED = ("attention", "caution", "danger", "error", "hint", "important", "seealso", "tip", "warning")
# Kinds whose argument is text (a title, a caption, a language): no argument is wrong.
TEXT_ARGUMENT = {
    "note",
    "aside",
    "appendix",
    "admonition",
    *TITLED,
    "code-block",
    "code",
    "sourcecode",
    "list-table",
}
# Roles whose content is text: anything renders, escaped.
TEXT_ROLES = {"sub", "subscript", "sup", "superscript", "abbr"}
BODY = {"list-table": "* - a\n  - b\n", "math": "x^2\n"}  # the others take "A caption."


def _cases() -> list[tuple[str, str, str]]:
    """(kind, argument, option lines) with exactly one thing wrong on an otherwise valid
    directive, or a wrong argument alone."""
    valid = {
        "figure": ("scale.svg", ""),
        "image": ("scale.svg", ":alt: A scale.\n"),
        "note": ("", ""),
        "aside": ("", ""),
        "appendix": ("Acknowledgments", ""),
        "admonition": ("A title", ""),
        **{name: ("", "") for name in TITLED},
        "math": ("", ""),
        "code-block": ("python", ""),
        "code": ("python", ""),
        "sourcecode": ("python", ""),
        "list-table": ("A caption", ""),
        # the computed kinds' uses, from the table of kinds: "argument\n:option: value"
        **{
            name: (use.partition("\n")[0], use.partition("\n")[2] + "\n" * ("\n" in use))
            for name, use in COMPUTED_FIGURES.items()
        },
    }
    assert set(valid) == set(DIRECTIVES), "a new kind needs a valid example here"
    cases = []
    for name, kind in DIRECTIVES.items():
        argument, options = valid[name]
        for bad in BAD_ARGUMENTS if name not in TEXT_ARGUMENT else ():
            if bad != argument:
                cases.append((name, bad, options))
        cases.append((name, argument, options + ":nosuchoption: 1\n"))
        for option in kind.declared_options():
            if option.name in ("label", "model") or option in FEATUREVIS_SETTINGS[1:]:
                continue  # label: tested elsewhere; model: loads files; the settings share parsers
            for value in BAD_VALUES[:4] if option.required else BAD_VALUES:
                kept = "".join(
                    line + "\n" for line in options.splitlines() if not line.startswith(f":{option.name}:")
                )
                cases.append((name, argument, kept + f":{option.name}: {value}\n"))
    return cases


@pytest.mark.parametrize("kind", sorted(DIRECTIVES))
def test_every_kind_turns_every_wrong_argument_and_option_into_path_line_errors(tmp_path, cache, kind):
    refused = 0
    for index, (name, argument, options) in enumerate(case for case in _cases() if case[0] == kind):
        text = BODY.get(name, "A caption.\n")
        body = f"```{{{name}}} {argument}\n{options}{text}```\n"
        root = tmp_path / str(index)
        path, result = build(root, cache, body, "--frozen")
        if (root / "out").exists():  # the value happened to be valid and --frozen found it cached
            continue
        try:
            assert_only_path_line_errors(path, result)
        except AssertionError:
            raise AssertionError(f"for\n{body}\n{result.output}") from None
        refused += 1
    # at least every wrong argument was refused (or the unknown option, for text arguments)
    assert refused >= (1 if kind in TEXT_ARGUMENT else len(BAD_ARGUMENTS) - 1)


@pytest.mark.parametrize(
    "content", ["!!", "mixed3", "mixed3:1-2", "mixed3:999", "nolayer:1", "a <b>", "%s <>"]
)
@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_role_turns_wrong_content_into_path_line_errors(tmp_path, cache, role, content):
    path, result = build(tmp_path, cache, f"Text {{{role}}}`{content}` here.\n", "--frozen")
    # Text is shown; TeX that typesets (`!!`, `a <b>`) too: either way escaped.
    if role in TEXT_ROLES or (role == "math" and result.exit_code == 0):
        assert result.exit_code == 0, result.output
        assert "<b>" not in (tmp_path / "out" / "a" / "index.html").read_text("utf-8")
        return
    assert_only_path_line_errors(path, result)
