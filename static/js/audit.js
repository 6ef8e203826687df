// Compliance console: say that a chain verification is running, and stop double submits.
(function () {
  "use strict";
  var form = document.getElementById("audit-verify-form");
  if (!form) {
    return;
  }
  form.addEventListener("submit", function () {
    var button = document.getElementById("audit-verify-button");
    var progress = document.getElementById("audit-verify-progress");
    var verdict = document.getElementById("audit-verdict");
    if (button) {
      button.disabled = true;
    }
    if (progress) {
      progress.hidden = false;
    }
    if (verdict) {
      verdict.classList.add("stale");
    }
  });
})();
