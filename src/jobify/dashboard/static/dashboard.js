// jobify dashboard: confirmation of actions and live refresh. Plain script, no build step.
// The server renders every page; this only asks before an action and swaps in fresh HTML
// for the page's live part (rendered and escaped by the server) every few seconds.
(function () {
  "use strict";

  // An action form asks first; the server sees confirmed=1 and acts (without this script
  // it answers with a confirmation page instead).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (!window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      return;
    }
    var field = form.querySelector('input[name="confirmed"]');
    if (field) field.value = "1";
  });

  // Filter forms apply a chosen status at once.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLSelectElement && field.form && field.form.hasAttribute("data-autosubmit")) {
      field.form.submit();
    }
  });

  var live = document.getElementById("live");
  var indicator = document.getElementById("live-status");
  // A page may refresh less often than the dashboard's setting (data-refresh on #live).
  var seconds = Number(
    (live && live.getAttribute("data-refresh")) || document.body.getAttribute("data-refresh") || "0"
  );
  if (!live || !(seconds > 0)) return;

  var busy = false;
  var refreshed = 0;

  function show(text, kind) {
    if (!indicator) return;
    indicator.textContent = text;
    indicator.className = "live-status " + kind;
  }

  function typing() {
    var active = document.activeElement;
    return active && live.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function refresh() {
    if (busy || document.hidden || typing()) return;
    busy = true;
    fetch(window.location.href, {
      headers: { "X-Jobify-Fragment": "live" },
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error"
    }).then(function (response) {
      if (response.status === 404) {
        show("gone", "down");
        return null;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      if (html === null) return;
      // Tracebacks the reader opened stay open.
      var open = Array.prototype.map.call(
        live.querySelectorAll("details[open][data-key]"),
        function (d) { return d.getAttribute("data-key"); }
      );
      var parsed = new DOMParser().parseFromString(html, "text/html");
      live.replaceChildren.apply(live, Array.prototype.slice.call(parsed.body.childNodes));
      open.forEach(function (key) {
        live.querySelectorAll("details[data-key]").forEach(function (d) {
          if (d.getAttribute("data-key") === key) d.open = true;
        });
      });
      refreshed += 1;
      document.body.setAttribute("data-refreshed", String(refreshed));
      show("live", "ok");
    }).catch(function () {
      show("offline", "down");
    }).then(function () {
      busy = false;
    });
  }

  show("live", "ok");
  window.setInterval(refresh, seconds * 1000);
})();
