"""User-facing errors and warnings, always as `path:line: severity: message`.

Every stage reports author mistakes to a `Reporter` instead of raising, so one build lists all
of them at once. `BuildFailed` is raised only after the errors were reported; the CLI turns it
into exit status 1 without a traceback.
"""

from __future__ import annotations

import difflib
import enum
import errno
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class Code(enum.StrEnum):
    """What a diagnostic is about, for programs that act on it (the CLI's hints, a MyST
    plugin's severities) rather than on its words, which may change."""

    UNCACHED = "uncached"  # --frozen (or verify) needs a figure or model description not cached
    PREDICTION = "prediction"  # a figure's prediction did not hold (an ablation's :predict:)
    CACHE = "cache"  # a damaged cache entry, set aside and computed again


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" or "warning"
    path: Path | None
    line: int | None  # 1-based
    message: str
    author: bool = True  # a problem of the text (False: of the machine; --strict leaves it a warning)
    code: Code | None = None

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{_display(self.path)}:{self.line}: " if self.line else f"{_display(self.path)}: "
        return f"{where}{self.severity}: {self.message}"


class BuildFailed(Exception):
    """Raised after errors were reported; carries nothing a user needs to see."""


class Superseded(BuildFailed):
    """serve stopped a build for a newer edit (`Options.superseded`): nothing is wrong, and
    nothing was written that the next build does not take up."""


class Reporter:
    """Collects diagnostics; `strict` turns warnings into errors."""

    def __init__(self, strict: bool = False, echo=None) -> None:
        self.strict = strict
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[Diagnostic] = set()  # the same problem reached twice is reported once
        self._errors: list[Diagnostic] = []
        self._echo = echo

    def error(self, path: Path | None, line: int | None, message: str, *, code: Code | None = None) -> None:
        self._add(Diagnostic("error", path, line, message, code=code))

    def warning(
        self,
        path: Path | None,
        line: int | None,
        message: str,
        *,
        author: bool = True,
        code: Code | None = None,
    ) -> None:
        """`author=False` for problems of the machine, not the text (a corrupt cache entry):
        `strict` does not turn those into errors."""
        severity = "error" if self.strict and author else "warning"
        self._add(Diagnostic(severity, path, line, message, author, code))

    def has(self, code: Code) -> bool:
        """Whether an error with `code` was reported."""
        return any(error.code is code for error in self._errors)

    def _add(self, diagnostic: Diagnostic) -> None:
        if diagnostic in self._seen:
            return
        self._seen.add(diagnostic)
        self.diagnostics.append(diagnostic)
        if diagnostic.severity == "error":
            self._errors.append(diagnostic)
        if self._echo is not None:
            self._echo(str(diagnostic))

    @property
    def errors(self) -> list[Diagnostic]:
        """Read-only. Kept as they come rather than filtered on each call: kinds count errors
        around every directive and role, and a large article has tens of thousands of those."""
        return self._errors

    def raise_if_errors(self) -> None:
        if self.errors:
            raise BuildFailed(f"{len(self.errors)} error(s)")


_OS_PROBLEMS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file is in the way where a folder is needed",
}


def describe_os_error(exc: OSError) -> str:
    """What went wrong with the disk, in words, naming the file when the error does."""
    problem = (_OS_PROBLEMS.get(exc.errno) if exc.errno is not None else None) or exc.strerror or str(exc)
    return f"{problem} ({exc.filename})" if exc.filename else problem


def suggest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def shorten(text: str, limit: int = 80) -> str:
    """`text` on one line and at most `limit` characters, for quoting author input in a message
    (a formula or an HTML block can be tens of kilobytes)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
