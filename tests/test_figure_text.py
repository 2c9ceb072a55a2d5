"""Figures as a reader sees them on a phone and on a desktop, on every page of the example site:
no figure text under 10 px at 375 px or at 1,100 px (a chart or diagram scaled down as a
picture fails), no chart or diagram text over 16 px at 1,100 px, and no legend over a plotted
line or point."""

from __future__ import annotations

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
