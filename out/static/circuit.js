// distillgen: circuit diagrams. Hovering or focusing a node highlights the edges that touch
// it and dims the rest; the edge's own hover card comes from distill.js (data-hover-ref).
(function () {
  "use strict";

  function highlight(node, on) {
    var svg = node.closest("svg.circuit-svg");
    var unit = node.getAttribute("data-unit");
    svg.classList.toggle("focused", on);
    svg.querySelectorAll(".edge").forEach(function (edge) {
      var touches = edge.getAttribute("data-from") === unit || edge.getAttribute("data-to") === unit;
      edge.classList.toggle("active", on && touches);
    });
    svg.querySelectorAll(".node").forEach(function (other) {
      other.classList.toggle("active", on && other === node);
    });
  }

  function nodeOf(event) {
    return event.target instanceof Element ? event.target.closest("svg.circuit-svg .node") : null;
  }

  ["mouseover", "focusin"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var node = nodeOf(event);
      if (node) highlight(node, true);
    });
  });
  ["mouseout", "focusout"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var node = nodeOf(event);
      if (node && !node.contains(event.relatedTarget)) highlight(node, false);
    });
  });
})();
