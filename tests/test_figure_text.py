"""Figures as a reader sees them on a phone and on a desktop, on every page of the example site:
no figure text under 10 px at 375 px or at 1,100 px (a chart or diagram scaled down as a
picture fails), no chart or diagram text over 16 px at 1,100 px, and no legend over a plotted
line or point."""

from __future__ import annotations

from pathlib import Path

import pytest

# For each visible text of a figure: its rendered font size (an SVG text's size times the
# drawing's scale on the screen); for each visible chart: its legend and plotted marks' boxes.
MEASURE = """() => {
  const shown = el => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const texts = [];
  for (const figure of document.querySelectorAll("figure")) {
    const walker = document.createTreeWalker(figure, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    while (walker.nextNode()) {
      const element = walker.currentNode.parentElement;
      if (!walker.currentNode.textContent.trim() || seen.has(element)) continue;
      seen.add(element);
      if (element.closest("title, desc") || !shown(element)) continue;  // tooltips, hidden drawings
      let size = parseFloat(getComputedStyle(element).fontSize);
      const svg = element instanceof SVGElement;
      if (svg) {
        const ctm = element.getScreenCTM();
        size *= Math.hypot(ctm.a, ctm.b);
      }
      texts.push({text: walker.currentNode.textContent.trim().slice(0, 40), size, svg});
    }
  }
  const overlaps = [];
  const meets = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  for (const chart of document.querySelectorAll("svg.plot")) {
    if (!shown(chart)) continue;
    const marks = [...chart.querySelectorAll(".series polyline, .series polygon, .series circle, .series rect, .pair rect")];
    for (const legend of chart.querySelectorAll(".legend")) {
      const box = legend.getBoundingClientRect();
      for (const mark of marks) {
        if (meets(box, mark.getBoundingClientRect())) {
          overlaps.push(chart.querySelector("title").textContent);
          break;
        }
      }
    }
  }
  return {texts, overlaps};
}"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1100])
def test_figure_text_is_legible_and_legends_stay_off_the_data(browser, example_build, width):
    pages = sorted(example_build.rglob("*.html"))
    assert len(pages) > 50
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    small, large, covered, texts = [], [], [], 0
    for path in pages:
        page.goto(path.as_uri())
        found = page.evaluate(MEASURE)
        name = str(path.relative_to(example_build))
        texts += len(found["texts"])
        small += [(name, t["text"], round(t["size"], 1)) for t in found["texts"] if t["size"] < 10]
        if width > 600:
            large += [
                (name, t["text"], round(t["size"], 1)) for t in found["texts"] if t["svg"] and t["size"] > 16
            ]
        covered += [(name, title) for title in found["overlaps"]]
    context.close()
    assert texts > 1000  # the measure saw the figures' text
    assert small == [] and large == [] and covered == []


# Every text of a visible chart inside its drawing, and no two texts of it overlapping.
CONTAINED = """() => {
  const problems = [];
  for (const chart of document.querySelectorAll("svg.plot")) {
    const frame = chart.getBoundingClientRect();
    if (!frame.width) continue;
    const boxes = [...chart.querySelectorAll("text")].map(t => [t.textContent, t.getBoundingClientRect()]);
    for (const [text, box] of boxes) {
      if (box.left < frame.left - 1 || box.right > frame.right + 1 || box.top < frame.top - 1
          || box.bottom > frame.bottom + 1) problems.push("outside: " + text);
    }
    boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
      if (p.left < q.right - 1 && q.left < p.right - 1 && p.top < q.bottom - 1 && q.top < p.bottom - 1)
        problems.push("overlap: " + a + " / " + b);
    }));
  }
  return problems;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1100])
def test_long_names_and_wide_ticks_stay_inside_their_charts(browser, width):
    """Series names, axis titles and tick labels longer than the example site's: every text
    inside its chart, none over another (names break onto lines, margins hold the ticks)."""
    from distillgen.render.plots import histograms, line_plot, paired_bars

    long = "mixed4a_5x5_pre_relu_conv:123 of lucent:inceptionv1@untrained"
    charts = [
        line_plot(
            [0.0, 90.0, 180.0, 270.0, 360.0],
            [(long, [1.0, 2.0, 3.0, 2.0, 1.0]), ("mixed4:52", [40000.0, 20.0, 3.0, 2.0, 1.0])],
            "orientation (°)",
            f"peak response of {long}",
            "T",
            angles=True,
        ),
        histograms(
            [(f"{long} vs shapes@untrained", [0.1, 0.5]), ("baseline", [0.0])],
            "purity: share of the top 16 images in their most common class",
            "H",
        ),
        paired_bars(["image 0", "image 1"], [0.005, 0.002], [0.001, -0.004], "B", f"peak response of {long}"),
    ]
    css = (Path(__file__).parents[1] / "templates" / "static" / "distill.css").read_text()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_content(
        f"<style>{css}</style>" + "".join(f'<div class="plot">{chart}</div>' for chart in charts)
    )
    problems = page.evaluate(CONTAINED)
    context.close()
    assert problems == []
