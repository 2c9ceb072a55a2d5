// distillgen: the search page. Pagefind's UI over the index built with the site; result links
// are made relative to the site's root (this page lives one folder below it), so the site
// works under any path of a static host.
(function () {
  "use strict";
  if (location.protocol === "file:" || typeof PagefindUI === "undefined") {
    document.querySelector(".search-note").hidden = false;
    return;
  }
  var root = new URL("../", location.href).pathname;
  new PagefindUI({ element: "#search", baseUrl: root, bundlePath: root + "pagefind/", showImages: false, showSubResults: true });
})();
