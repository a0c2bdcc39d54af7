// FlashFusion dashboard: copy buttons, confirmations, and live regions that refresh
// themselves while something is still running. No inline script anywhere (CSP: script-src 'self').
(function () {
  "use strict";

  function showCopied(id) {
    var note = document.querySelector('[data-copied-for="' + id + '"]');
    if (note) { note.hidden = false; }
  }

  function copyFallback(el, id) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { if (document.execCommand("copy")) { showCopied(id); } } catch (e) { /* selected: copy by hand */ }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var id = button.getAttribute("data-copy");
    var el = document.getElementById(id);
    if (!el) { return; }
    var text = el.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { showCopied(id); },
                                               function () { copyFallback(el, id); });
    } else {
      copyFallback(el, id);
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    var button = form.querySelector("button[type=submit]");
    if (button) { setTimeout(function () { button.disabled = true; }, 0); }
  });

  var INTERVAL = 1500;

  function refresh(id) {
    var current = document.getElementById(id);
    if (!current || current.getAttribute("data-active") !== "1") { return; }
    if (document.hidden) { setTimeout(function () { refresh(id); }, INTERVAL); return; }
    fetch(current.getAttribute("data-live"), {credentials: "same-origin", headers: {"Accept": "text/html"},
                                               redirect: "manual", cache: "no-store"})
      .then(function (response) {
        if (response.status !== 200) { throw new Error("status " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById(id);
        var now = document.getElementById(id);
        if (fresh && now) {
          now.replaceWith(document.importNode(fresh, true));
        }
        setTimeout(function () { refresh(id); }, INTERVAL);
      })
      .catch(function () { setTimeout(function () { refresh(id); }, INTERVAL * 4); });
  }

  // "3 min ago": the same steps as timefmt.ago on the server, recomputed while the page stays open
  var AGO_STEPS = [[60, 1, "s"], [3600, 60, "min"], [86400, 3600, "h"], [86400 * 45, 86400, "d"]];

  function ago(seconds) {
    if (seconds < 10) { return "just now"; }
    for (var i = 0; i < AGO_STEPS.length; i++) {
      if (seconds < AGO_STEPS[i][0]) { return Math.floor(seconds / AGO_STEPS[i][1]) + " " + AGO_STEPS[i][2] + " ago"; }
    }
    return null;
  }

  function refreshAges() {
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      var when = Date.parse(el.getAttribute("datetime"));
      if (isNaN(when)) { return; }
      var text = ago((Date.now() - when) / 1000);
      if (text) { el.textContent = text; }
    });
  }

  function start() {
    setInterval(refreshAges, 30000);
    document.querySelectorAll(".live[data-active='1']").forEach(function (el) {
      if (el.id) { setTimeout(function () { refresh(el.id); }, INTERVAL); }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
