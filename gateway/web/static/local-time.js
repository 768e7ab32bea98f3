// Rewrites each <time data-local> in the browser's own time zone; without it, the page
// shows the zone the server knew.
"use strict";
document.querySelectorAll("time[data-local]").forEach(function (element) {
  var at = new Date(element.getAttribute("datetime"));
  if (isNaN(at.getTime())) { return; }
  var format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  element.textContent = format.format(at);
  element.setAttribute("title", at.toISOString());
});
