// The package page's "Copy link" button: shown only where the browser can copy; without
// JavaScript the link stays a plain, selectable address.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (!navigator.clipboard) {
    return;
  }
  document.querySelectorAll("button.copy-link").forEach(function (button) {
    var done = button.nextElementSibling;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.dataset.copy).then(function () {
        if (done) {
          done.hidden = false;
        }
      });
    });
  });
});
