// Keyboard shortcuts (A, B, T, X; on fact-check pages 1-6 pick verdicts and Enter submits), a guard
// against double submission, the minimum reading time, and one sign of life: on the rater's first
// interaction the page posts to its alive URL, which extends the item's short first lease.
(function () {
  "use strict";
  var form = document.getElementById("vote-form");
  if (!form) return;
  var buttons = Array.prototype.slice.call(form.querySelectorAll("[data-key]"));
  var aliveUrl = form.getAttribute("data-alive-url");
  var lifeEvents = ["pointerdown", "pointermove", "keydown", "scroll", "wheel", "touchstart"];
  function alive() {
    lifeEvents.forEach(function (name) { window.removeEventListener(name, alive, true); });
    window.fetch(aliveUrl, { method: "POST", credentials: "same-origin", keepalive: true }).catch(function () {});
  }
  // Only a short first lease asks for it (the server leaves the URL out otherwise).
  if (aliveUrl && window.fetch) {
    lifeEvents.forEach(function (name) { window.addEventListener(name, alive, { capture: true, passive: true }); });
  }
  var waitMs = parseInt(form.getAttribute("data-wait-ms") || "0", 10);
  if (waitMs > 0) {
    var note = document.getElementById("wait-note");
    buttons.forEach(function (b) { b.disabled = true; });
    note.hidden = false;
    setTimeout(function () {
      buttons.forEach(function (b) { b.disabled = false; });
      note.hidden = true;
    }, waitMs);
  }
  form.addEventListener("submit", function (event) {
    if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
    // After the form data is built, so the clicked button's value still goes with it.
    setTimeout(function () { buttons.forEach(function (b) { b.disabled = true; }); }, 0);
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"))) return;
    var key = (event.key || "").toLowerCase();
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].getAttribute("data-key") === key) {
        event.preventDefault();
        if (!buttons[i].disabled) buttons[i].click();
        return;
      }
    }
  });
})();
