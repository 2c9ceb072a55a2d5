"""`distillgen new`: an article that shows every feature, ready to edit and build."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import jinja2

from distillgen.render.page import templates_dir


class ScaffoldError(Exception):
    pass


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug or "article"


def create_article(title: str, folder: Path, slug: str | None = None) -> list[Path]:
    """Write `<slug>.md`, its `.bib` and its example figure; refuses to overwrite."""
    slug = slugify(slug or title)
    scaffold = templates_dir() / "scaffold"
    targets = {
        folder / f"{slug}.md": (scaffold / "article.md").read_text(encoding="utf-8"),
        folder / f"{slug}.bib": (scaffold / "references.bib").read_text(encoding="utf-8"),
        folder / f"{slug}-diagram.svg": (scaffold / "diagram.svg").read_text(encoding="utf-8"),
    }
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise ScaffoldError(f"{', '.join(existing)} already exists; choose another --slug")
    article = jinja2.Template(targets[folder / f"{slug}.md"], keep_trailing_newline=True)
    targets[folder / f"{slug}.md"] = article.render(
        title=title.replace('"', '\\"'), slug=slug, date=dt.date.today().isoformat()
    )
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
    return list(targets)
