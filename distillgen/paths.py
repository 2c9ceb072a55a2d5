"""Where a site's generated pages live: a unit's page and an atlas's, by model, layer and unit.
One place, read by the kinds that link to a unit (figures/unitview.py), the unit pages
(unitpages.py), the atlases (atlas.py) and the build (site.py)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from distillgen.jobs import FeatureVisJob, Job


def unit_page_path(model: str, layer: str, unit: int) -> str:
    """A unit's page inside the site."""
    return f"units/{model_folder(model)}/{layer}/{unit}.html"


def atlas_path(model: str, layer: str | None = None) -> str:
    """An atlas's page of the model, or of one of its layers."""
    return f"units/{model_folder(model)}/{layer + '/' if layer else ''}index.html"


def model_folder(model: str) -> str:
    """The folder of a model's pages: its spec, or a file spec's name and a digest of its path."""
    if re.fullmatch(r"[\w@.:-]+", model):
        return model.replace(":", "-")
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]  # file specs: absolute paths
    return f"{re.sub(r'[^A-Za-z0-9]+', '-', Path(model.split(':')[0]).stem)}-{digest}"


def links_to_page(job: Job) -> bool:
    """Featurevis jobs that show one unit as itself get a page (not negatives, directions)."""
    return isinstance(job, FeatureVisJob) and job.objective == "channel" and not job.diversity
