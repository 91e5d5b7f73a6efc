// hookd console: keeps the inbox page's lists up to date. The server sends a
// server-sent event for each request an inbox records; the script then fetches
// this page again (at its own address, data-page: a refused form's page is shown
// at the form's, which answers no GET) and puts its new lists (the parts marked
// data-swap) in place of the old ones. Without the script the page's Refresh link
// does the same. The
// refreshes say so in a header: they are no use of the session, which still ends
// after its idle time while the page stays open.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource || !window.fetch || !window.DOMParser) return;
  var page = live.getAttribute("data-page") || location.href;
  var status = document.getElementById("live-status");
  var say = function (text) {
    if (!status) return;
    status.hidden = false;
    status.textContent = text;
  };
  // keptFocus: when the focus is on a link (or another element with an id) inside
  // a list about to be replaced, a function that puts it on the same one in the
  // new list, so that a keyboard or screen reader user reading the list is not
  // thrown back to the top of the page each time a request arrives.
  function keptFocus(old) {
    var el = document.activeElement;
    if (!el || el === old || !old.contains(el)) return null;
    var attr = el.id ? "id" : el.getAttribute("href") ? "href" : "";
    if (!attr) return null;
    var value = el.getAttribute(attr);
    return function (now) {
      var same = Array.prototype.find.call(now.querySelectorAll("[" + attr + "]"), function (c) {
        return c.getAttribute(attr) === value;
      });
      if (same) same.focus({ preventScroll: true });
    };
  }
  var busy = false, again = false;
  function refresh() {
    if (busy) {
      again = true; // one more fetch when this one is done
      return;
    }
    busy = true;
    fetch(page, { credentials: "same-origin", headers: { Accept: "text/html", "X-Hookd-Live": "refresh" } })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        Array.prototype.forEach.call(document.querySelectorAll("[data-swap]"), function (old) {
          var now = fresh.getElementById(old.id);
          if (!now) return;
          now = document.importNode(now, true);
          var kept = keptFocus(old);
          old.replaceWith(now);
          if (kept) kept(now);
          now.dispatchEvent(new CustomEvent("hookd:swapped", { bubbles: true }));
        });
      })
      .catch(function () {
        say("The list could not be fetched again: use Refresh.");
      })
      .finally(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }
  var stream = live.getAttribute("data-live");
  // why asks the stream's address once more, for the reason the browser's
  // EventSource does not give, and says it: too many live views open (a 503), the
  // session ended (led to the sign-in page), the inbox no longer the reader's (404),
  // or hookd out of reach. It asks with a HEAD, which the server answers as it would
  // the stream without opening one: the question takes none of the reader's live
  // views, also when the page is being left (its stream closes first, so it asks)
  // and the browser keeps the request open after the page has gone.
  function why() {
    fetch(stream, { method: "HEAD", credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 503) {
          say("Live updates are off in this tab: too many live views of the inbox are open (at most 4 for one sign-in). Close another tab that shows the inbox, then refresh this page.");
        } else if (res.redirected || res.status === 401 || res.status === 403) {
          say("Live updates stopped: you are signed out. Sign in again, then refresh the page.");
        } else if (res.status === 404) {
          say("Live updates stopped: this inbox is no longer shown to you. Refresh the page.");
        } else {
          say("Live updates stopped: refresh the page.");
        }
      })
      .catch(function () {
        say("Live updates stopped: hookd cannot be reached (it stopped, or the network is down). Refresh the page when it is back.");
      });
  }
  var events = new EventSource(stream);
  events.addEventListener("open", function () {
    say("Live: new requests appear below as they arrive.");
  });
  events.addEventListener("request", function (ev) {
    var r = {};
    try {
      r = JSON.parse(ev.data);
    } catch (e) { /* the list is fetched anyway */ }
    say("New: request #" + r.id + " in inbox " + r.inbox + ".");
    refresh();
  });
  events.addEventListener("error", function () {
    if (events.readyState === EventSource.CLOSED) why();
  });
})();
