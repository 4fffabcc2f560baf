// Polls the benchmark run's progress endpoint and updates the page in place until the run finishes.
(function () {
  "use strict";
  var root = document.getElementById("run-progress");
  if (!root) { return; }
  var bar = root.querySelector("progress");
  function set(name, value) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = value; }
  }
  function pct(x) { return (100 * x).toFixed(1) + "%"; }
  function show(p) {
    set("status_display", p.status_display);
    set("done", p.done);
    set("total", p.total);
    set("correct", p.correct);
    set("accuracy", p.accuracy === null ? "—" : pct(p.accuracy));
    set("ci", p.ci === null ? "—" : pct(p.ci[0]) + "–" + pct(p.ci[1]));
    set("error", p.error);
    window.stylegapShards.show(root, p);
    if (bar) { bar.max = Math.max(p.total, 1); bar.value = p.done; }
  }
  function poll() {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) { show(p); if (!p.finished) { window.setTimeout(poll, 2000); } })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  if (root.dataset.finished !== "1") { window.setTimeout(poll, 1000); }
})();
