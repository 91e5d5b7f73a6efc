// hookd console: shows the pages' times in the reader's time zone, and puts the
// focus where a refused form is mended. Every page works without this script; the
// server writes UTC times in <time datetime>. A part of a page replaced later (the
// inbox's live list) sends "hookd:swapped", and its times are shown in the
// reader's zone too.
(function () {
  "use strict";
  // A refused form: its first field in error takes the focus (or, for an error of
  // the whole form, its message), so that a keyboard or screen reader user lands
  // where the form is mended. A field the page focuses itself (autofocus) keeps it.
  if (!document.querySelector("[autofocus]")) {
    var mend = document.querySelector('form [aria-invalid="true"]') || document.querySelector(".form-error[tabindex]");
    if (mend) mend.focus();
  }
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
