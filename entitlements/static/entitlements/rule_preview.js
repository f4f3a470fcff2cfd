// The policy page's rule preview: as a rule is typed, show how many users it matches and
// the first of them, or the parser's message with a caret under the place it is wrong.
(function () {
  "use strict";

  function policyId() {
    var match = window.location.pathname.match(/\/assignmentpolicy\/([0-9a-f-]{36})\/change\//);
    return match ? match[1] : "";
  }

  function describe(data) {
    if (data.error) {
      return { error: true, text: data.pointed };
    }
    var lines = [];
    lines.push(data.count === 1 ? "1 user matches" : data.count + " users match");
    if (data.added !== null && data.added !== undefined) {
      lines[0] += "; saving gives the package to " + data.added +
        " and starts the grace period of " + data.lost + " who no longer match";
    }
    lines[0] += ".";
    if (data.names.length) {
      var more = data.count - data.names.length;
      lines.push(data.names.join(", ") + (more > 0 ? " and " + more + " more" : ""));
    }
    return { error: false, text: lines.join("\n") };
  }

  function attach(field) {
    if (field.dataset.previewAttached) {
      return;
    }
    field.dataset.previewAttached = "1";
    var output = document.createElement("pre");
    output.className = "rule-preview";
    output.setAttribute("aria-live", "polite");
    field.insertAdjacentElement("afterend", output);
    var timer = null;
    var latest = 0;

    function refresh() {
      var text = field.value.trim();
      if (!text) {
        output.textContent = "";
        return;
      }
      var asked = ++latest;
      var url = field.dataset.previewUrl + "?" + new URLSearchParams({ rule: text, policy: policyId() });
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("The preview is not available (" + response.status + ").");
          }
          return response.json();
        })
        .then(function (data) {
          if (asked !== latest) {
            return;
          }
          var shown = describe(data);
          output.textContent = shown.text;
          output.classList.toggle("errornote", shown.error);
        })
        .catch(function (error) {
          output.textContent = error.message;
        });
    }

    field.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 300);
    });
    refresh();
  }

  function attachAll() {
    document.querySelectorAll("textarea.rule-input").forEach(attach);
  }

  document.addEventListener("DOMContentLoaded", attachAll);
  // Rows added with "Add another" are new textareas.
  document.addEventListener("formset:added", attachAll);
})();
