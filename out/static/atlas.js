// distillgen: filter an atlas layer's grid by unit number ("5", "10-20", "3, 7, 40-45").
(function () {
  "use strict";
  var input = document.getElementById("unit-filter");
  if (!input) return;
  var count = document.getElementById("unit-filter-count");
  var cells = Array.prototype.slice.call(document.querySelectorAll(".atlas-grid .unit-cell"));

  function wanted(text) {
    var ranges = [];
    text.split(",").forEach(function (part) {
      var match = part.trim().match(/^(\d+)(?:\s*-\s*(\d+))?$/);
      if (match) ranges.push([+match[1], match[2] === undefined ? +match[1] : +match[2]]);
    });
    return ranges;
  }

  function apply() {
    var ranges = wanted(input.value);
    var shown = 0;
    cells.forEach(function (cell) {
      var unit = +cell.getAttribute("data-unit");
      var keep = !ranges.length || ranges.some(function (r) { return unit >= r[0] && unit <= r[1]; });
      cell.hidden = !keep;
      if (keep) shown += 1;
    });
    count.textContent = shown + (shown === 1 ? " unit" : " units");
  }

  input.addEventListener("input", apply);
  apply();
})();
