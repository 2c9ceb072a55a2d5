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
  }

  function place(card, anchor) {
    var viewport = document.documentElement.clientWidth;
    var width = Math.min(420, viewport - 16);
    var rect = anchor.getBoundingClientRect();
    var left = rect.left + rect.width / 2 - width / 2;
    left = Math.max(8, Math.min(left, viewport - width - 8));
    card.style.width = width + "px";
    card.style.left = left + window.scrollX + "px";
    card.style.top = rect.bottom + window.scrollY + 6 + "px";
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
