"""{featurevis} mixed3:0-7: a grid of feature visualizations, one per unit, with hover cards."""

from __future__ import annotations

import re
from html import escape

from distillgen.figures import directive
from distillgen.figures.base import DirectiveKind
from distillgen.figures.figure import figure_html
from distillgen.figures.options import LABEL, LAYOUT, MODEL, Option, choice, integer
from distillgen.figures.unitview import (
    SETTINGS,
    THUMBNAIL,
    article_defaults,
    featurevis_job,
    image_html,
    page_href,
    settings_for,
    unit_card,
)
from distillgen.jobs import OBJECTIVES
from distillgen.units import ModelError, SpecError, UnitRef, parse_units

_LAYER = re.compile(r"^[A-Za-z_][\w.]*$")
_PAIR = re.compile(r"^\s*(\d+)\s*:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def direction(value: str) -> tuple[tuple[int, float], ...]:
    """`3: 1, 7: -0.5`: weights of channels (the others are 0)."""
    pairs = []
    for item in value.split(","):
        match = _PAIR.match(item)
        if not match:
            raise ValueError(f"'{item.strip()}' is not channel: weight; write e.g. '3: 1, 7: -0.5'")
        pairs.append((int(match[1]), float(match[2])))
    if not any(weight for _, weight in pairs):
        raise ValueError("the direction is zero")
    return tuple(pairs)


@directive
class FeatureVis(DirectiveKind):
    name = "featurevis"
    doc = "Feature visualizations of units: images optimized to excite each one."
    arguments = "unit addresses such as mixed3:0-7,conv2:3 (a layer name for :objective: direction)"
    options = (
        LABEL,
        LAYOUT,
        MODEL,
        Option("objective", choice(*OBJECTIVES), "channel", "what to maximize for each unit"),
        Option("direction", direction, None, "for :objective: direction: 'channel: weight, …'"),
        Option("diversity", integer(2, 16), None, "optimize this many images per unit, pushed apart"),
        *SETTINGS,
        Option("columns", integer(1, 16), None, "units per row (default: as many as fit)"),
    )
    numbered = True

    def check(self, directive, article) -> None:
        opts = directive.opts
        article_defaults(article)
        if opts["objective"] == "direction":
            if opts["direction"] is None:
                article.error(directive.line, "{featurevis} with :objective: direction needs :direction:")
                return
            if not _LAYER.match(directive.args):
                article.error(
                    directive.line, f"a direction is over one layer; write its name, not '{directive.args}'"
                )
                return
            units = [UnitRef(directive.args, 0)]
        else:
            if opts["direction"] is not None:
                article.error(directive.option_line("direction"), ":direction: needs :objective: direction")
                return
            try:
                units = parse_units(directive.args)
            except SpecError as exc:
                article.error(directive.line, str(exc))
                return
        spec = article.model_spec(opts["model"], directive.option_line("model"))
        if spec is not None:
            directive.data.update(spec=spec, units=units)

    def plan(self, directive, article) -> None:
        spec, opts = directive.data["spec"], directive.opts
        info = article.model_info(spec, directive.option_line("model"))
        if info is None:
            return
        try:
            units = info.check_units(directive.data["units"])
        except ModelError as exc:
            article.error(directive.line, str(exc))
            return
        given = {option.name: opts[option.name] for option in SETTINGS if option.name in directive.options}
        settings = settings_for(info, given, article_defaults(article))
        fields = {"objective": opts["objective"], "diversity": opts["diversity"] or 0}
        if opts["objective"] == "direction":
            layer = info.layers[units[0].layer]
            vector = [0.0] * layer.channels
            for channel, weight in opts["direction"]:
                if channel >= layer.channels:
                    article.error(
                        directive.option_line("direction"),
                        f"channel {channel} is out of range for '{layer.name}' (0-{layer.channels - 1})",
                    )
                    return
                vector[channel] = weight
            units = [UnitRef(layer.name, -1)]
            fields["direction"] = tuple(vector)
        if opts["objective"] == "neuron" and any(len(info.layers[u.layer].shape) != 3 for u in units):
            article.error(
                directive.line, ":objective: neuron needs convolutional layers (with a spatial centre)"
            )
            return
        jobs = [featurevis_job(spec, info, unit, settings, **fields) for unit in units]
        directive.data["jobs"] = jobs
        for job in jobs:
            article.need(job, directive.line)

    def render(self, directive, article) -> str:
        cells = []
        for job in directive.data["jobs"]:
            address = job.address if job.objective != "direction" else f"{job.layer} direction"
            for image in range(job.images):
                label = address if job.images == 1 else f"{address} ({image + 1}/{job.images})"
                anchor = unit_card(article, job, label, image)
                img = image_html(article, job, image, THUMBNAIL, f"feature visualization of {label}")
                href = page_href(job)
                tag, link = ("a", f' href="{escape(href)}"') if href else ("div", ' tabindex="0"')
                cells.append(
                    f'<{tag} class="unit-cell"{link} data-hover-ref="{anchor}">{img}'
                    f'<span class="unit-label">{escape(label)}</span></{tag}>'
                )
        columns = directive.opts["columns"]
        style = f' style="--columns: {columns}"' if columns else ""
        return figure_html(
            directive, article, f'<div class="unit-grid"{style}>{"".join(cells)}</div>', "featurevis"
        )
