// Follows a running bulk job: updates the progress bar from its status, reloads when it ends.
(function () {
  "use strict";
  var main = document.querySelector(".bulk-job");
  if (!main) return;
  var bar = document.getElementById("bulk-progress");
  var text = document.getElementById("bulk-progress-text");
  function poll() {
    fetch(main.dataset.statusUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (bar) { bar.max = s.total; bar.value = s.processed; }
        if (text) { text.textContent = s.processed + " / " + s.total + " (" + s.percent + "%)"; }
        if (s.state !== main.dataset.state && (s.state === "done" || s.state === "failed")) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1500);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
