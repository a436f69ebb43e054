/* Steward consent banner and API (consent.js). Dependency-free.
 *
 * Loads the visitor's choice from GET /v1/consent of the server this script
 * came from and, when the server says to ask (no choice, a new privacy
 * policy, a lapsed choice), shows a banner with "Accept all" and "Reject
 * all" side by side in the same style, and "Customize", which opens a
 * preferences dialog (role="dialog", aria-modal, focus kept inside, Escape
 * closes). Choices are saved with PUT /v1/consent.
 *
 * window.steward.consent:
 *   get()           the current state: {purposes: {necessary, functional,
 *                   analytics, marketing}, ask, gpc, policyVersion,
 *                   bannerVersion, loaded}
 *   set(purposes)   grants or denies purposes, e.g. {analytics: false};
 *                   returns a Promise of the new state
 *   onChange(fn)    calls fn(state) whenever the state changes
 *   show()          opens the preferences dialog
 *   ready           a Promise resolved once the stored choice is loaded
 *
 * Scripts written as <script type="text/plain" data-consent="analytics">
 * run only once their purpose is granted. When the page has gtag, Google
 * Consent Mode v2 is told the choice (default: denied; update on every
 * change). navigator.globalPrivacyControl is reported to the server, which
 * then keeps marketing off unless the visitor switches it on here.
 */
(function () {
  "use strict";
  var w = window, d = document;
  var steward = (w.steward = w.steward || {});
  if (steward.consent && steward.consent._steward) return;

  var config = /*STEWARD_CONSENT_CONFIG*/{};
  var text = config.text || {};
  var script = d.currentScript;
  var base = script && script.src ? new URL("/", script.src).href : "/";
  var endpoint = new URL("v1/consent", base).href;
  var OPTIONAL = ["functional", "analytics", "marketing"];
  var listeners = [];
  var state = {
    purposes: { necessary: true, functional: false, analytics: false, marketing: false },
    ask: false, gpc: false, loaded: false,
    policyVersion: config.policyVersion, bannerVersion: config.bannerVersion,
  };
  var browserGPC = navigator.globalPrivacyControl === true;
  var banner = null, dialog = null, lastFocus = null, dialogFromBanner = false;

  function copy() {
    return {
      purposes: Object.assign({}, state.purposes), ask: state.ask, gpc: state.gpc, loaded: state.loaded,
      policyVersion: state.policyVersion, bannerVersion: state.bannerVersion,
    };
  }

  function apply(view) {
    var before = JSON.stringify(state.purposes);
    state.purposes = Object.assign({ necessary: true }, view.purposes || {});
    state.ask = !!view.ask;
    state.gpc = !!view.gpc;
    state.loaded = true;
    state.policyVersion = view.policy_version || config.policyVersion;
    state.bannerVersion = view.banner_version || config.bannerVersion;
    consentMode("update");
    activateScripts();
    var changed = before !== JSON.stringify(state.purposes);
    for (var i = 0; i < listeners.length; i++) {
      try { listeners[i](copy(), changed); } catch (e) { /* a listener's error is its own */ }
    }
  }

  // csrfToken reads the session's double-submit token, which a signed-in
  // visitor's unsafe requests must echo in a header.
  function csrfToken() {
    var name = config.csrfCookie + "=", parts = d.cookie ? d.cookie.split(/;\s*/) : [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(name) === 0) return decodeURIComponent(parts[i].slice(name.length));
    }
    return "";
  }

  function request(method, body) {
    var url = endpoint;
    if (method === "GET" && browserGPC) url += "?gpc=1";
    var headers = {};
    if (body) headers["Content-Type"] = "application/json";
    var token = method !== "GET" && config.csrfCookie ? csrfToken() : "";
    if (token) headers[config.csrfHeader] = token;
    return fetch(url, {
      method: method,
      credentials: "include",
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (res) {
      if (!res.ok) throw new Error("consent request failed: " + res.status);
      return res.json();
    });
  }

  // saving is the last save in flight, or the first load. Saves go one at
  // a time in the order the visitor made them: sent together, a slower
  // earlier answer would land last and undo the later choice, on the page
  // and on the server.
  var saving = null;

  function save(method, purposes) {
    var body = {
      method: method, policy_version: config.policyVersion, banner_version: config.bannerVersion,
    };
    if (purposes) body.purposes = purposes;
    if (browserGPC) body.gpc = true;
    var send = function () {
      return request("PUT", body).then(function (view) {
        apply(view);
        return copy();
      });
    };
    var p = saving ? saving.then(send, send) : send();
    saving = p.then(null, function () { /* a failed save does not block the next */ });
    return p;
  }

  // Google Consent Mode v2: analytics_storage follows analytics; the three
  // ad signals follow marketing.
  function consentMode(kind) {
    if (typeof w.gtag !== "function") return;
    var p = state.purposes, g = function (b) { return b ? "granted" : "denied"; };
    w.gtag("consent", kind, {
      analytics_storage: g(p.analytics),
      ad_storage: g(p.marketing),
      ad_user_data: g(p.marketing),
      ad_personalization: g(p.marketing),
      functionality_storage: g(p.functional),
      personalization_storage: g(p.functional),
      security_storage: "granted",
    });
  }

  // activateScripts runs each gated script whose purpose is granted, once.
  function activateScripts() {
    var list = d.querySelectorAll('script[type="text/plain"][data-consent]');
    for (var i = 0; i < list.length; i++) {
      var old = list[i], purpose = old.getAttribute("data-consent");
      if (!state.purposes[purpose]) continue;
      var s = d.createElement("script");
      for (var j = 0; j < old.attributes.length; j++) {
        var a = old.attributes[j];
        if (a.name !== "type" && a.name !== "data-consent") s.setAttribute(a.name, a.value);
      }
      s.setAttribute("data-consent-activated", purpose);
      if (!old.src) s.text = old.text;
      old.parentNode.replaceChild(s, old);
    }
  }

  function el(tag, attrs, children) {
    var e = d.createElement(tag);
    for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "on") e.addEventListener("click", attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  function style() {
    if (d.getElementById("stw-consent-style")) return;
    var css =
      ".stw-banner{position:fixed;left:0;right:0;bottom:0;z-index:2147483000;background:#fff;color:#111;" +
      "border-top:1px solid #ccc;padding:16px;font:15px/1.4 system-ui,sans-serif;box-shadow:0 -2px 8px rgba(0,0,0,.15)}" +
      ".stw-banner h2,.stw-dialog h2{font-size:17px;margin:0 0 8px}" +
      ".stw-actions{display:flex;flex-wrap:wrap;gap:8px;margin-top:12px}" +
      ".stw-btn{font:inherit;padding:10px 18px;min-width:9em;border-radius:6px;border:2px solid #111;background:#111;color:#fff;cursor:pointer}" +
      ".stw-btn-secondary{background:#fff;color:#111}" +
      ".stw-btn:focus-visible{outline:3px solid #2563eb;outline-offset:2px}" +
      ".stw-backdrop{position:fixed;inset:0;z-index:2147483001;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center}" +
      ".stw-dialog{background:#fff;color:#111;max-width:560px;width:calc(100% - 32px);max-height:calc(100% - 32px);overflow:auto;" +
      "border-radius:8px;padding:20px;font:15px/1.4 system-ui,sans-serif}" +
      ".stw-purpose{border-top:1px solid #ddd;padding:10px 0}.stw-purpose label{font-weight:600;display:flex;gap:8px;align-items:center}" +
      ".stw-purpose p{margin:4px 0 0 28px;color:#333}.stw-note{background:#f3f4f6;padding:8px;border-radius:6px}";
    d.head.appendChild(el("style", { id: "stw-consent-style", text: css }));
  }

  function hideBanner() {
    if (banner && banner.parentNode) banner.parentNode.removeChild(banner);
    banner = null;
  }

  function showBanner() {
    if (banner || !d.body) return;
    style();
    var titleID = "stw-banner-title";
    // Accept and Reject share one class, one size and one row: refusing is
    // exactly as easy to see and to reach as accepting.
    banner = el("div", { class: "stw-banner", role: "region", "aria-label": text.region_label, "aria-labelledby": titleID }, [
      el("h2", { id: titleID, text: text.title }),
      el("p", {}, [
        d.createTextNode(text.body + " "),
        el("a", { href: text.policy_url, text: text.policy_link }),
      ]),
      el("div", { class: "stw-actions" }, [
        el("button", { type: "button", class: "stw-btn", "data-action": "accept", text: text.accept_all, on: function () { hideBanner(); save("banner_accept"); } }),
        el("button", { type: "button", class: "stw-btn", "data-action": "reject", text: text.reject_all, on: function () { hideBanner(); save("banner_reject"); } }),
        el("button", { type: "button", class: "stw-btn stw-btn-secondary", "data-action": "customize", text: text.customize, on: function () { openDialog(true); } }),
      ]),
    ]);
    d.body.appendChild(banner);
  }

  function focusables(root) {
    return Array.prototype.filter.call(
      root.querySelectorAll('button,[href],input:not([disabled]),select,textarea,[tabindex]:not([tabindex="-1"])'),
      function (e) { return !e.disabled; });
  }

  function openDialog(fromBanner) {
    if (dialog || !d.body) return;
    style();
    dialogFromBanner = !!fromBanner;
    lastFocus = d.activeElement;
    var titleID = "stw-dialog-title", boxes = {};
    var items = (config.purposes || []).map(function (p) {
      var t = (text.purposes || {})[p] || { label: p, description: "" };
      var id = "stw-purpose-" + p, descID = id + "-desc";
      var box = el("input", { type: "checkbox", id: id, name: p, "aria-describedby": descID });
      if (p === "necessary") {
        box.checked = true;
        box.disabled = true;
      } else {
        box.checked = !!state.purposes[p];
        boxes[p] = box;
      }
      return el("div", { class: "stw-purpose" }, [
        el("label", { for: id }, [box, d.createTextNode(t.label + (p === "necessary" ? " (" + text.always_on + ")" : ""))]),
        el("p", { id: descID, text: t.description }),
      ]);
    });
    function close() {
      if (!dialog) return;
      d.removeEventListener("keydown", onKey, true);
      dialog.parentNode.removeChild(dialog);
      dialog = null;
      if (dialogFromBanner && state.ask && banner) {
        var first = banner.querySelector("button");
        if (first) first.focus();
      } else if (lastFocus && lastFocus.focus) {
        lastFocus.focus();
      }
    }
    function choose(method, purposes) {
      hideBanner();
      close();
      return save(method, purposes);
    }
    var method = state.ask ? "banner_save" : "preferences";
    var box = el("div", { class: "stw-dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": titleID }, [
      el("h2", { id: titleID, text: text.preferences_title }),
      state.gpc || browserGPC ? el("p", { class: "stw-note", text: text.gpc_notice }) : null,
      el("div", {}, items),
      el("div", { class: "stw-actions" }, [
        el("button", { type: "button", class: "stw-btn", "data-action": "accept", text: text.accept_all, on: function () { choose("banner_accept"); } }),
        el("button", { type: "button", class: "stw-btn", "data-action": "reject", text: text.reject_all, on: function () { choose("banner_reject"); } }),
        el("button", { type: "button", class: "stw-btn stw-btn-secondary", "data-action": "save", text: text.save, on: function () {
          var chosen = {};
          OPTIONAL.forEach(function (p) { if (boxes[p]) chosen[p] = boxes[p].checked; });
          choose(method, chosen);
        } }),
        el("button", { type: "button", class: "stw-btn stw-btn-secondary", "data-action": "close", text: text.close, on: close }),
      ]),
    ]);
    dialog = el("div", { class: "stw-backdrop" }, [box]);
    // The focus trap: Tab and Shift+Tab cycle through the dialog's
    // controls, Escape closes it.
    function onKey(e) {
      if (!dialog) return;
      if (e.key === "Escape") {
        e.preventDefault();
        close();
        return;
      }
      if (e.key !== "Tab") return;
      var f = focusables(box);
      if (!f.length) return;
      var i = f.indexOf(d.activeElement);
      e.preventDefault();
      var next = e.shiftKey ? (i <= 0 ? f.length - 1 : i - 1) : (i < 0 || i === f.length - 1 ? 0 : i + 1);
      f[next].focus();
    }
    d.addEventListener("keydown", onKey, true);
    d.body.appendChild(dialog);
    var first = focusables(box)[0];
    if (first) first.focus();
  }

  var api = {
    _steward: true,
    get: copy,
    set: function (purposes) {
      var chosen = {};
      for (var k in purposes || {}) if (OPTIONAL.indexOf(k) >= 0) chosen[k] = !!purposes[k];
      hideBanner();
      return save("api", chosen);
    },
    onChange: function (fn) {
      if (typeof fn === "function") listeners.push(fn);
      return function () {
        var i = listeners.indexOf(fn);
        if (i >= 0) listeners.splice(i, 1);
      };
    },
    show: function () { openDialog(false); },
  };
  consentMode("default");
  api.ready = request("GET").then(function (view) {
    apply(view);
    if (state.ask) {
      if (d.body) showBanner();
      else d.addEventListener("DOMContentLoaded", showBanner);
    }
    return copy();
  }, function () {
    // Without the server nothing is granted; ask once it answers again.
    state.loaded = true;
    return copy();
  });
  saving = api.ready;
  steward.consent = api;
  try {
    w.dispatchEvent(new Event("steward:consent-ready"));
  } catch (e) { /* very old browsers: the tracker polls instead */ }
})();
