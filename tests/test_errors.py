"""Every author mistake: `path:line: error: …`, exit 1, no traceback, previous build intact."""

import pytest

from tests.conftest import run_cli, write

GOOD = "---\ntitle: Good\nbibliography: refs.bib\n---\n\nText {cite}`olah2020zoom`.\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "```{figur} scale.svg\n```\n",
            "a.md:6: error: unknown directive '{figur}' (did you mean 'figure'?)",
        ),
        ("Text {cyte}`olah2020zoom`.\n", "a.md:6: error: unknown role '{cyte}' (did you mean 'cite'?)"),
        (
            "```{figure} scale.svg\n:layot: l-page\nCap.\n```\n",
            "a.md:7: error: unknown option ':layot:' for {figure} (did you mean 'layout'?)",
        ),
        (
            "```{figure} scale.svg\n:layout: l-wide\nCap.\n```\n",
            "a.md:7: error: bad value for ':layout:' in {figure}: expected one of l-body,",
        ),
        (
            "```{figure} scale.svg\n:width: wide\nCap.\n```\n",
            "a.md:7: error: bad value for ':width:' in {figure}: expected a length such as 200, 200px or 50%, not 'wide'",
        ),
        ("```{figure} nope.png\nCap.\n```\n", "a.md:6: error: file not found: 'nope.png'"),
        ("![a picture](nope.png)\n", "a.md:6: error: file not found: 'nope.png'"),
        (
            "Text {cite}`olah2020zom`.\n",
            "a.md:6: error: unknown citation key 'olah2020zom' in refs.bib (did you mean 'olah2020zoom'?)",
        ),
        (
            "```{figure} scale.svg\n:label: fig-a\nA.\n```\n\n```{figure} scale.svg\n:label: fig-a\nB.\n```\n",
            "a.md:12: error: duplicate label 'fig-a' (first defined on line 7)",
        ),
        (
            "See {numref}`fig-nope`.\n",
            "a.md:6: error: unresolved reference {numref}`fig-nope`: no label 'fig-nope'",
        ),
        ("See [](#nowhere).\n", "a.md:6: error: unresolved reference [](#nowhere): no label 'nowhere'"),
        ("Bad math $\\frac{a}{$.\n", "a.md:6: error: cannot typeset $\\frac{a}{$:"),
        ("```{math} extra\nx\n```\n", "a.md:6: error: {math} takes no argument, got 'extra'"),
        ("```{figure}\nCap.\n```\n", "a.md:6: error: {figure} needs an argument"),
    ],
)
def test_author_mistakes(site, tmp_path, body, expected):
    write(site / "a.md", "---\ntitle: A\nbibliography: refs.bib\n---\n\n" + body)
    result = run_cli("build", str(site), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line.split("src/", 1)[-1] for line in result.stderr.splitlines()]
    assert any(line.startswith(expected) for line in lines), result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("---\ntitle: [unclosed\n---\n", "a.md:2: error: malformed front matter:"),
        ("---\ntitle: A\nbibliography: missing.bib\n---\n", "a.md:3: error: bibliography file not found:"),
        ("---\ntitle: A\n", "a.md:1: error: front matter opened with '---' is never closed"),
        ("No front matter.\n", "a.md:1: error: missing front matter"),
        (
            "---\ntitle: A\nmodel: alexnet\n---\n",
            "a.md:3: error: front matter 'model': unknown model spec 'alexnet'",
        ),
        ("---\ntitle: A\ncite: {cite}`x`\n---\n", "a.md:3: "),
    ],
)
def test_front_matter_mistakes(site, tmp_path, front, expected):
    write(site / "a.md", front + "\nBody.\n")
    result = run_cli("build", str(site), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line.split("src/", 1)[-1] for line in result.stderr.splitlines()]
    assert any(line.startswith(expected) for line in lines), result.stderr


def test_warnings_pass_but_fail_with_strict(site, tmp_path):
    write(site / "a.md", "---\ntitle: A\ncolour: red\n---\n\n```pythn\nx\n```\n")
    result = run_cli("build", str(site), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert "a.md:6: warning: no syntax highlighting for unknown language 'pythn'" in result.stderr
    assert "a.md:3: warning: unknown front matter key 'colour'" in result.stderr
    strict = run_cli("build", str(site), "-o", str(tmp_path / "out2"), "--strict")
    assert strict.exit_code == 1
    assert "a.md:6: error: no syntax highlighting for unknown language 'pythn'" in strict.stderr


def test_all_errors_of_all_articles_are_reported_at_once(site, tmp_path):
    write(site / "a.md", "---\ntitle: A\ndate: soon\n---\n\n{cyte}`x`\n")
    write(site / "b.md", "---\ntitle: B\n---\n\n```{figur} x\n```\n")
    result = run_cli("build", str(site), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "a.md:3: error:" in result.stderr
    assert "a.md:6: error: unknown role" in result.stderr
    assert "b.md:5: error: unknown directive" in result.stderr


def test_failed_build_leaves_previous_build_untouched(site, tmp_path):
    out = tmp_path / "out"
    write(site / "a.md", GOOD)
    assert run_cli("build", str(site), "-o", str(out)).exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    write(site / "a.md", GOOD + "\n```{figur} x\n```\n")
    result = run_cli("build", str(site), "-o", str(out))
    assert result.exit_code == 1
    assert "was left as it was" in result.stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    # No staging left behind; the lock file stays, as waiting builds must share its inode, and
    # the manifest of what the output holds (site.manifest_path).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", ".out.manifest.json", "out", "src"]


def test_refuses_to_replace_a_folder_it_did_not_write(site, tmp_path):
    write(site / "a.md", GOOD)
    precious = write(tmp_path / "mine" / "thesis.tex", "do not delete")
    result = run_cli("build", str(site), "-o", str(tmp_path / "mine"))
    assert result.exit_code == 1
    assert "was not written by distillgen" in result.stderr
    assert precious.read_text() == "do not delete"
    result = run_cli("build", str(site), "-o", str(site))
    assert result.exit_code == 1
    assert "must not contain the articles" in result.stderr


def test_missing_source_folder(tmp_path):
    result = run_cli("build", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "error: source folder not found" in result.stderr
