"""`--archive`: each article also as one self-contained file, `<slug>/index.archive.html`, the
way Distill published `index.archive.html`: stylesheets and scripts inlined, every image a
`data:` URL, so that the article can be mailed, attached to a paper or deposited, and opens
from a disk with no network (but for what the article itself takes from the web: a `{figure}`
with an https:// image stays a link to it).

Only what the page loads is inlined. An archive opened on its own has no site beside it, so it
keeps no relative link: links a reader follows (unit pages, other articles, the search page)
point to the published site when the site config has a `url`, and otherwise lose their `href`
and stay as text; a link to a place in the page itself becomes its bare fragment.
"""

from __future__ import annotations

import base64
import mimetypes
import posixpath
import re
from html import escape, unescape
from pathlib import Path

from distillgen.render.reuse import page_text

# What a page loads, in the HTML distillgen writes: (tag, attribute) pairs.
_LOADED = re.compile(
    r'<(?P<tag>link|script|img|image)\b(?P<before>[^>]*?)\b(?P<attr>src|href)="(?P<url>[^"]*)"(?P<after>[^>]*)>'
)
# A link a reader follows, in HTML (href) or SVG (xlink:href).
_LINK = re.compile(r'<a\b(?P<before>[^>]*?)\s+(?P<attr>(?:xlink:)?href)="(?P<url>[^"#][^"]*)"')
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def archive_page(page: str, html: str, pages: dict, copies: dict[str, Path | str], site_url: str = "") -> str:
    """`html`, the page at site path `page`, with what it loads inlined from the site being
    written (`pages`: site path -> text or reuse.Page, `copies`: site path -> file)."""
    folder = posixpath.dirname(page)

    def target(url: str) -> str | None:
        if _EXTERNAL.match(url) or url.startswith("/"):
            return None
        return posixpath.normpath(posixpath.join(folder, unescape(url).split("#")[0].split("?")[0]))

    def content(path: str) -> bytes | None:
        if path in pages:
            return page_text(pages[path]).encode("utf-8")
        if path in copies:
            return Path(copies[path]).read_bytes()
        return None

    def inline(match: re.Match) -> str:
        tag, url = match["tag"], match["url"]
        path = target(url)
        data = content(path) if path else None
        if path is None or data is None:
            return match[0]
        if tag == "link" and "stylesheet" in match["before"] + match["after"]:
            return f"<style>{data.decode('utf-8')}</style>"
        if tag == "script":
            # A script element's text ends at the first "</script": split it where it appears.
            code = data.decode("utf-8").replace("</script", "<\\/script")
            attributes = (match["before"] + match["after"]).replace(" defer", "")
            # `defer` means nothing to an inline script: run it once the document is parsed.
            return f'<script{attributes}>addEventListener("DOMContentLoaded", function () {{\n{code}\n}});'

        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        uri = f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
        return f'<{tag}{match["before"]}{match["attr"]}="{uri}"{match["after"]}>'

    def link(match: re.Match) -> str:
        path = target(match["url"])
        if path is None:
            return match[0]
        url = unescape(match["url"])
        rest = url[min((url.find(c) for c in "?#" if c in url), default=len(url)) :]  # query, fragment
        attr, before = match["attr"], match["before"]
        if path == page and rest.startswith("#"):
            return f'<a{before} {attr}="{escape(rest)}"'
        if not site_url:
            return f"<a{before}"
        return f'<a{before} {attr}="{escape(site_url.rstrip("/") + "/" + path + rest)}"'

    html = html.replace(' loading="lazy"', "")  # inlined images are there already; print them all
    return _LINK.sub(link, _LOADED.sub(inline, html))
