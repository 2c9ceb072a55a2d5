// distillgen: hover cards for footnotes and citations. Progressive: without this script
// the same links jump to the appendix.
(function () {
  "use strict";
  var box = null;
  var hideTimer = null;

  function ensureBox() {
    if (box) return box;
    box = document.createElement("div");
    box.className = "hover-box";
    box.setAttribute("role", "tooltip");
    box.hidden = true;
    box.addEventListener("mouseenter", function () { clearTimeout(hideTimer); });
    box.addEventListener("mouseleave", scheduleHide);
    document.body.appendChild(box);
    return box;
  }

  function show(anchor) {
    var source = document.getElementById(anchor.getAttribute("data-hover-ref"));
    if (!source) return;
    clearTimeout(hideTimer);
    var card = ensureBox();
    var copy = source.cloneNode(true);
    copy.querySelectorAll(".footnote-backref").forEach(function (el) { el.remove(); });
    copy.querySelectorAll("[id]").forEach(function (el) { el.removeAttribute("id"); });
    card.replaceChildren.apply(card, Array.prototype.slice.call(copy.childNodes));
    card.hidden = false;
    place(card, anchor);
    card.querySelectorAll("img").forEach(function (img) {  // placed again once its size is known
      if (img.complete) return;
      img.addEventListener("load", function () {
        if (!card.hidden && card.contains(img)) place(card, anchor);
      }, { once: true });
    });
  }

  // Where a card opens. An anchor inside a figure (a circuit's node or edge, a unit of a grid)
  // gets its card BESIDE the figure, so the diagram stays in view: to its right if the window
  // has room there, else to its left, else (a narrow window) just below the whole figure, or
  // above it; where neither is in view (a figure taller than the window) by the anchor, as
  // anywhere else. By the anchor, a card opens below it, or above it when the room below is
  // too short for the card and the room above is larger.
  var GAP = 8, EDGE = 8, WIDEST = 420, NARROWEST = 240;

  function place(card, anchor) {
    var viewport = document.documentElement.clientWidth;
    var height = document.documentElement.clientHeight;
    var rect = anchor.getBoundingClientRect();
    var figure = anchor.closest("figure") || anchor.closest(".circuit");
    if (figure && placeBeside(card, rect, figure.getBoundingClientRect(), viewport, height)) return;
    var width = Math.min(WIDEST, viewport - 2 * EDGE);
    var left = rect.left + rect.width / 2 - width / 2;
    left = Math.max(EDGE, Math.min(left, viewport - width - EDGE));
    card.style.width = width + "px";
    var tall = card.offsetHeight;
    var below = height - rect.bottom - 6, above = rect.top - 6;
    var top = tall > below && above > below ? Math.max(EDGE, rect.top - 6 - tall) : rect.bottom + 6;
    put(card, left, top);
  }

  function placeBeside(card, rect, box, viewport, height) {
    var right = viewport - box.right - GAP - EDGE, left = box.left - GAP - EDGE;
    var sides = [[right, box.right + GAP], [left, null]];
    for (var i = 0; i < sides.length; i++) {
      var room = sides[i][0];
      if (room < NARROWEST) continue;
      var width = Math.min(WIDEST, room);
      card.style.width = width + "px";
      if (card.scrollWidth > card.clientWidth + 1) continue;  // its content needs more room
      var tall = card.offsetHeight;
      var top = Math.max(EDGE, Math.min(rect.top, height - tall - EDGE));
      put(card, sides[i][1] === null ? box.left - GAP - width : sides[i][1], top);
      return true;
    }
    var full = Math.min(WIDEST, viewport - 2 * EDGE);
    card.style.width = full + "px";
    var cardLeft = Math.max(EDGE, Math.min(rect.left + rect.width / 2 - full / 2, viewport - full - EDGE));
    var cardHeight = card.offsetHeight;
    var belowFits = box.bottom + 6 + cardHeight <= height - EDGE;
    var aboveFits = box.top - 6 - cardHeight >= 0;
    if (belowFits || (!aboveFits && box.bottom + 6 < height - 2 * EDGE)) {
      put(card, cardLeft, box.bottom + 6);  // below the figure: whole, or where it is in view
      return true;
    }
    if (aboveFits) {
      put(card, cardLeft, box.top - 6 - cardHeight);
      return true;
    }
    return false;
  }

  function put(card, left, top) {  // viewport coordinates to the page's
    card.style.left = left + window.scrollX + "px";
    card.style.top = top + window.scrollY + "px";
  }

  function scheduleHide() {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(function () { if (box) box.hidden = true; }, 300);
  }

  function hoverTarget(event) {
    return event.target instanceof Element ? event.target.closest("[data-hover-ref]") : null;
  }

  document.addEventListener("mouseover", function (event) {
    var anchor = hoverTarget(event);
    if (anchor) show(anchor);
  });
  document.addEventListener("mouseout", function (event) {
    var anchor = hoverTarget(event);
    if (anchor && !anchor.contains(event.relatedTarget)) scheduleHide();
  });
  document.addEventListener("focusin", function (event) {
    var anchor = hoverTarget(event);
    if (anchor) show(anchor);
  });
  document.addEventListener("focusout", function (event) {
    if (hoverTarget(event)) scheduleHide();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && box) box.hidden = true;
  });
})();

// The dark-mode toggle: the reader's choice overrides the system setting and is remembered.
(function () {
  "use strict";
  var button = document.querySelector(".theme-toggle");
  if (!button) return;
  var root = document.documentElement;
  var system = window.matchMedia("(prefers-color-scheme: dark)");

  function dark() {
    var chosen = root.getAttribute("data-theme");
    return chosen ? chosen === "dark" : system.matches;
  }
  function show() { button.setAttribute("aria-pressed", String(dark())); }

  button.hidden = false;
  button.addEventListener("click", function () {
    var theme = dark() ? "light" : "dark";
    root.setAttribute("data-theme", theme);
    try { localStorage.setItem("distillgen-theme", theme); } catch (e) {}
    show();
  });
  system.addEventListener("change", show);
  show();
})();
