// Refreshes the status page in place: fetches the same URL every data-refresh seconds and
// swaps in the new results. The page works the same without this script (reload it).
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh"), 10) || 30;
  function refresh() {
    fetch(window.location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (answer) {
        if (!answer.ok) { throw new Error("HTTP " + answer.status); }
        return answer.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var incoming = fresh.getElementById("results");
        var current = document.getElementById("results");
        if (incoming && current) {
          current.innerHTML = incoming.innerHTML;
          document.title = fresh.title;
        }
      })
      .catch(function () { /* the daemon restarts or is down: try again next time */ })
      .then(function () { window.setTimeout(refresh, seconds * 1000); });
  }
  window.setTimeout(refresh, seconds * 1000);
}());
