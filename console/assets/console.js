// hookd console: shows the pages' times in the reader's time zone, puts the
// focus where a refused form is mended, and sends a form once for a double click.
// Every page works without this script; the server writes UTC times in <time
// datetime>. A part of a page replaced later (the inbox's live list) sends
// "hookd:swapped", and its times are shown in the reader's zone too.
(function () {
  "use strict";
  // A refused form: its first field in error takes the focus (or, for an error of
  // the whole form, its message), so that a keyboard or screen reader user lands
  // where the form is mended. A field the page focuses itself (autofocus) keeps it.
  if (!document.querySelector("[autofocus]")) {
    var mend = document.querySelector('form [aria-invalid="true"]') || document.querySelector(".form-error[tabindex]");
    if (mend) mend.focus();
  }
  // A form that changes something is sent once: a second click while its answer
  // is on its way (a double click) would send it again, and the browser shows the
  // second answer, "a client named … already exists" or "Not rotated", in place
  // of the first's, which holds a secret shown only once. A page come back to
  // with the Back button, or a form left without an answer for a while (its
  // sending stopped), may be sent again.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.method !== "post") return;
    var sent = Number(form.getAttribute("data-sent"));
    if (sent && Date.now() - sent < 10000) {
      ev.preventDefault();
      return;
    }
    form.setAttribute("data-sent", String(Date.now()));
  });
  window.addEventListener("pageshow", function (ev) {
    if (!ev.persisted) return;
    Array.prototype.forEach.call(document.querySelectorAll("form[data-sent]"), function (form) {
      form.removeAttribute("data-sent");
    });
  });
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
