// Polls the model's status while a worker validates it (and downloads Hub weights), updating the page in place.
(function () {
  "use strict";
  var root = document.getElementById("model-progress");
  if (!root || root.dataset.finished === "1") { return; }
  var line = root.querySelector('[data-field="download"]');
  var bar = line.querySelector("progress");
  function mb(n) { return (n / 1048576).toFixed(1) + " MB"; }
  function show(p) {
    root.querySelector('[data-field="status_message"]').textContent = p.status_message || p.status_display;
    if (p.download_total_bytes !== null) {
      line.hidden = false;
      bar.max = Math.max(p.download_total_bytes, 1);
      bar.value = p.download_done_bytes || 0;
      line.querySelector('[data-field="download_text"]').textContent =
        mb(p.download_done_bytes || 0) + " of " + mb(p.download_total_bytes);
    }
  }
  function poll() {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        show(p);
        if (p.finished) { window.location.reload(); } else { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
