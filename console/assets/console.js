// hookd console: shows the pages' times in the reader's time zone. Every page
// works without this script; the server writes UTC times in <time datetime>.
// A part of a page replaced later (the inbox's live list) sends "hookd:swapped",
// and its times are shown in the reader's zone too.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  var full = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  var hourMinute = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function each(root, selector, fn) {
    Array.prototype.forEach.call(root.querySelectorAll(selector), fn);
  }
  function localize(root) {
    each(root, "time[datetime]", function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.title = el.textContent; // the UTC time stays at hand
      el.textContent = full.format(d);
    });
    each(root, "text[data-time]", function (el) {
      var d = new Date(el.getAttribute("data-time"));
      if (!isNaN(d.getTime())) el.textContent = hourMinute.format(d);
    });
  }
  localize(document);
  each(document, "[data-zone]", function (el) {
    el.textContent = "Times are in your time zone, " + zone + ".";
  });
  document.addEventListener("hookd:swapped", function (ev) {
    localize(ev.target);
  });
})();
