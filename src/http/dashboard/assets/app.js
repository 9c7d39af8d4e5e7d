// jobq dashboard: progressive enhancement only; every page works without it.
// - Live: on pages whose <body> has data-live="<ms>", the elements with a
//   data-live attribute (and an id) are replaced every <ms> by those of a
//   fresh copy of the same page, while the "Live" box is checked.
// - "Select all" on the jobs page.
(function () {
  "use strict";
  var period = Number(document.body.dataset.live || 0);
  var box = document.getElementById("live");
  async function refresh() {
    if (box && !box.checked) { return; }
    try {
      var r = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (!r.ok || r.redirected) { return; }
      var fresh = new DOMParser().parseFromString(await r.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach(function (el) {
        var next = fresh.getElementById(el.id);
        if (next) { el.replaceWith(document.importNode(next, true)); }
      });
    } catch (e) { /* the next tick tries again */ }
  }
  if (period > 0) { setInterval(refresh, period); }
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=id]").forEach(function (c) { c.checked = all.checked; });
    });
  }
})();
