/* Steward analytics tracker (t.js). Dependency-free.
 *
 * Sends page views (also on single-page-app route changes), custom events
 * and conversions to POST /v1/events of the server this script came from.
 * It sends only what the visitor's consent allows, as window.steward.consent
 * (consent.js) reports it:
 *   - no analytics consent: nothing but "error" events, with no session id,
 *     screen, language or properties, and nothing written to the browser;
 *   - analytics: page views and events with a per-tab session id, but page
 *     URLs and the referrer without query strings, so no campaign parameter
 *     or click id is sent;
 *   - analytics and marketing: the landing page's UTM parameters and click
 *     ids and the full referrer, for attribution.
 * The server applies the same rules from the consent it has stored, so the
 * tracker's choices are a courtesy, not the safeguard.
 *
 * Events are queued and sent in batches with fetch(..., {keepalive: true}),
 * or navigator.sendBeacon when the page is hidden. Every event carries a
 * UUID made here; a batch whose sending failed is sent again with the same
 * ids, and the server stores each id once.
 *
 * API: window.steward.track(name, props), window.steward.conversion(name,
 * value, currency), window.steward.page().
 */
(function () {
  "use strict";
  var w = window, d = document;
  var steward = (w.steward = w.steward || {});
  if (steward.track && steward._tracker) return;

  var script = d.currentScript;
  var endpoint = (script && script.getAttribute("data-endpoint")) ||
    (script && script.src ? new URL("/v1/events", script.src).href : "/v1/events");
  var MAX_BATCH = 50, FLUSH_MS = 1000, MAX_QUEUE = 500;
  var TYPES = ["page_view", "feature_interaction", "pricing_view", "signup", "purchase", "performance", "error"];
  var queue = [], timer = null, sending = false, backoff = FLUSH_MS, lastPath = null;

  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    c.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = [];
    for (var i = 0; i < 16; i++) h.push((b[i] + 0x100).toString(16).slice(1));
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") + "-" +
      h.slice(8, 10).join("") + "-" + h.slice(10, 16).join("");
  }

  // granted reads the consent banner's state; without it nothing beyond
  // necessary is assumed.
  function granted(purpose) {
    var c = steward.consent;
    if (!c || typeof c.get !== "function") return purpose === "necessary";
    var s = c.get();
    return !!(s && s.purposes && s.purposes[purpose]);
  }

  function stripQuery(u) {
    if (!u) return u;
    var i = u.search(/[?#]/);
    return i < 0 ? u : u.slice(0, i);
  }

  // store keeps the session id and the session's landing page and
  // referrer in sessionStorage, only while analytics consent is given.
  function store(key, make) {
    try {
      var v = w.sessionStorage.getItem(key);
      if (!v) {
        v = make();
        w.sessionStorage.setItem(key, v);
      }
      return v;
    } catch (e) {
      return make();
    }
  }

  function forget() {
    try {
      w.sessionStorage.removeItem("steward_sid");
      w.sessionStorage.removeItem("steward_landing");
      w.sessionStorage.removeItem("steward_ref");
    } catch (e) { /* storage blocked: nothing to forget */ }
  }

  function externalReferrer() {
    var r = d.referrer;
    if (!r) return "";
    try {
      return new URL(r).host === location.host ? "" : r;
    } catch (e) {
      return "";
    }
  }

  function build(type, name, props, value, currency) {
    var analytics = granted("analytics"), marketing = analytics && granted("marketing");
    if (type !== "error" && !analytics) return null;
    var ev = { event_id: uuid(), type: type, time: new Date().toISOString() };
    if (name && name !== type) ev.name = String(name).slice(0, 100);
    var url = location.href;
    if (analytics) {
      var landing = store("steward_landing", function () { return location.href; });
      var ref = store("steward_ref", function () { return externalReferrer() || "-"; });
      ev.session_id = store("steward_sid", uuid).replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64);
      ev.landing_page = marketing ? landing : stripQuery(landing);
      if (ref !== "-") ev.referrer = marketing ? ref : stripQuery(ref);
      ev.screen = w.screen ? w.screen.width + "x" + w.screen.height : undefined;
      ev.language = (navigator.language || "").slice(0, 35) || undefined;
      if (props && typeof props === "object") ev.props = props;
    } else {
      forget();
    }
    ev.url = marketing ? url : stripQuery(url);
    if (value !== undefined && value !== null && isFinite(value)) {
      ev.value = Math.round(Number(value) * 10000) / 10000;
      ev.currency = String(currency || "").toUpperCase();
    }
    return ev;
  }

  function enqueue(ev) {
    if (!ev) return;
    if (queue.length >= MAX_QUEUE) queue.shift();
    queue.push(ev);
    if (queue.length >= MAX_BATCH) flush();
    else schedule(FLUSH_MS);
  }

  function schedule(ms) {
    if (timer) return;
    timer = setTimeout(function () {
      timer = null;
      flush();
    }, ms);
  }

  function flush(beacon) {
    if (!queue.length || (sending && !beacon)) return;
    var batch = queue.slice(0, MAX_BATCH);
    var body = JSON.stringify(batch);
    if (beacon && navigator.sendBeacon) {
      // A string is sent as text/plain, which needs no CORS preflight.
      if (navigator.sendBeacon(endpoint, body)) {
        queue.splice(0, batch.length);
        if (queue.length) flush(true);
      }
      return;
    }
    sending = true;
    fetch(endpoint, {
      method: "POST",
      body: body,
      keepalive: body.length < 60000,
      credentials: "include",
      headers: { "Content-Type": "application/json" },
    }).then(function (res) {
      sending = false;
      if (res.status === 202 || res.status === 400) {
        // 400: nothing in the batch was valid; sending it again cannot help.
        queue.splice(0, batch.length);
        backoff = FLUSH_MS;
        if (queue.length) schedule(0);
        return;
      }
      retry(res.headers.get("Retry-After"));
    }, function () {
      sending = false;
      retry(null);
    });
  }

  function retry(after) {
    var ms = after ? Number(after) * 1000 : backoff;
    backoff = Math.min(backoff * 2, 60000);
    schedule(isFinite(ms) && ms > 0 ? ms : backoff);
  }

  function page() {
    var path = location.pathname + location.search;
    if (path === lastPath) return;
    var ev = build("page_view");
    if (ev) lastPath = path;
    enqueue(ev);
  }

  // Single-page apps change the route with pushState; the back and
  // forward buttons fire popstate.
  var push = history.pushState;
  history.pushState = function () {
    var r = push.apply(this, arguments);
    setTimeout(page, 0);
    return r;
  };
  w.addEventListener("popstate", function () { setTimeout(page, 0); });
  d.addEventListener("visibilitychange", function () {
    if (d.visibilityState === "hidden") flush(true);
  });
  w.addEventListener("pagehide", function () { flush(true); });

  steward._tracker = true;
  steward.page = page;
  steward.track = function (name, props) {
    name = String(name || "");
    var type = TYPES.indexOf(name) >= 0 ? name : "feature_interaction";
    enqueue(build(type, name, props));
  };
  steward.conversion = function (name, value, currency) {
    name = String(name || "purchase");
    var type = name === "signup" ? "signup" : "purchase";
    enqueue(build(type, name, null, value, currency));
  };
  steward.flush = function () { flush(); };

  function watchConsent() {
    var c = steward.consent;
    if (c && typeof c.onChange === "function") {
      c.onChange(function () {
        if (!granted("analytics")) {
          forget();
          // Events queued under the old choice are not sent.
          queue = queue.filter(function (ev) { return ev.type === "error"; });
          lastPath = null;
          return;
        }
        page();
      });
      return true;
    }
    return false;
  }
  if (!watchConsent()) {
    // consent.js may load after this script.
    w.addEventListener("steward:consent-ready", watchConsent, { once: true });
  }
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", page);
  else page();
})();
