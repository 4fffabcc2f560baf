// A sharded job's shards and the workers on it (templates/inference/_shards.html), updated from its progress JSON.
window.stylegapShards = (function () {
  "use strict";
  function set(root, name, value) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = value; }
  }
  function show(root, p) {
    if (!p.shards) { return; }
    set(root, "shards_done", p.shards.done);
    set(root, "shards_total", p.shards.total);
    var list = root.querySelector('[data-field="workers"]');
    if (!list) { return; }
    list.textContent = "";
    p.workers.forEach(function (w) {
      var item = document.createElement("li");
      var on = w.running === null ? "" : "on shard " + w.running + ", ";
      var lost = w.shards_lost ? ", " + w.shards_lost + " lost (taken over)" : "";
      item.textContent = w.worker + ": " + on + w.shards_done + " done" + lost;
      list.appendChild(item);
    });
    if (!p.workers.length) {
      var none = document.createElement("li");
      none.textContent = "none yet";
      list.appendChild(none);
    }
  }
  return { show: show };
})();
