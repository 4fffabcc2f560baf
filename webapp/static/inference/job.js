// Polls the job's progress endpoint and updates the page in place until the job finishes.
(function () {
  "use strict";
  var root = document.getElementById("job-progress");
  if (!root) { return; }
  var bar = root.querySelector("progress");
  function set(name, value) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = value; }
  }
  function show(p) {
    set("status_display", p.status_display);
    set("done", p.done);
    set("total", p.total);
    set("tokens_per_second", p.tokens_per_second === null ? "—" : p.tokens_per_second);
    set("eta", p.eta_seconds === null ? "—" : p.eta_seconds + " s");
    set("prompt_tokens", p.prompt_tokens);
    set("tokens_so_far", p.tokens_so_far);
    set("cost_usd", p.cost_usd);
    set("error", p.error);
    window.stylegapShards.show(root, p);
    bar.max = Math.max(p.total, 1);
    bar.value = p.done;
  }
  function poll() {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        show(p);
        if (p.finished) {
          var cancel = document.getElementById("job-cancel");
          if (cancel) { cancel.remove(); }
        } else {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  if (root.dataset.finished !== "1") { window.setTimeout(poll, 1000); }
})();
