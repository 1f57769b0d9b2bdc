// A request the page made (a run, a step, a diagram) that a replica dropped is sent again, once.
// Behind a balancer a replica can die with requests in flight: those answer 502, 503 or 504, or
// the connection just breaks (htmx:responseError / htmx:sendError). The page waits a little (a
// 503's Retry-After, capped), sends the very same request again, and says so in the status line;
// if that fails too it says the server is not answering, keeps the last good panels (dimmed) and
// stops: one retry per request, never a loop. A request typed over (the form holds other values
// now) or replaced by a newer one for the same place is not retried: the newer one is what counts.
// A 503 that pages.py answers as 200 with a notice (a busy pool) is no HTTP failure and is not
// seen here. Loaded before live.js, so a retry is marked (tpRetryOf) before live.js reads it.
(() => {
  "use strict";
  const RETRY_STATUSES = new Set([0, 502, 503, 504]);   // 0: the connection broke, no answer
  const RETRY_DELAY_MS = 300;        // a moment for the balancer to send it elsewhere
  const RETRY_AFTER_MAX_MS = 3000;   // a 503's Retry-After is honoured up to this
  const $ = sel => document.querySelector(sel);

  const latest = new WeakMap();      // target element -> the newest request made for it
  let sending = null;                // the failed request whose retry is being issued, or null
  let gaveUp = null;                 // {target, status, notice} of the last request given up on

  // What the learner reads, by what the request was for.
  function kindOf(path) {
    if (path === "/fragments/step") return {noun: "step", done: "loaded it again"};
    if (path === "/fragments/diagram") return {noun: "diagram", done: "drew it again"};
    if (path === "/fragments/run") return {noun: "run", done: "ran it again"};
    return {noun: "request", done: "sent it again"};
  }

  function setStatus(state, text) {   // the same line live.js writes to
    const el = $("#live-status");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
    el.title = text;
  }

  function delayOf(xhr) {
    const after = xhr.status === 503 ? Number(xhr.getResponseHeader("Retry-After")) : NaN;
    if (!Number.isFinite(after) || after < 0) return RETRY_DELAY_MS;
    return Math.min(after * 1000, RETRY_AFTER_MAX_MS);
  }

  const pairs = data => [...data.entries()].map(([k, v]) => k + "\u0000" + v).sort().join("\u0001");

  // A form's request is retried only while the form still holds what was sent (no typing since).
  function unchanged(detail) {
    const elt = detail.elt, sent = detail.requestConfig.formData;
    if (!(elt instanceof HTMLFormElement) || !sent) return true;
    return pairs(new FormData(elt)) === pairs(sent);
  }

  function stillWanted(detail) {
    const target = detail.target;
    return target && target.isConnected && latest.get(target) === detail.xhr && unchanged(detail);
  }

  // The same request again: same source element (its hx-sync and hx-swap apply), target, swap and
  // values. A form's values are read from the form, which stillWanted() found unchanged.
  function resend(detail) {
    const cfg = detail.requestConfig, etc = detail.etc || {};
    const source = detail.elt === document.body ? null : detail.elt;
    sending = detail.xhr;
    try {
      htmx.ajax(cfg.verb.toUpperCase(), cfg.path, {
        source, target: detail.target, swap: etc.swapOverride, values: etc.values, headers: etc.headers,
      });
    } finally {
      sending = null;
    }
  }

  // The status line is one line that never wraps the bar: it gets the short form, the notice
  // under the bar the whole of it. Panels that this request should have replaced are dimmed; a
  // diagram that failed is a placeholder again, so focusing its tensor asks once more.
  function giveUp(detail) {
    const status = detail.xhr.status;
    const down = `The server is not answering${status ? ` (${status})` : ""}.`;
    setStatus("error", down);
    const notice = $("#notice");
    if (notice) notice.textContent = `${down} Your code is safe; try Run again.`;
    gaveUp = {target: detail.target, status: down, notice: notice && notice.textContent};
    const target = detail.target;
    if (target && target.id === "panels") target.classList.add("stale");
    if (target && target.matches("figure.sd")) target.dataset.lazy = "1";
  }

  // What giveUp() said goes once the thing that failed is answered (new panels clear the notice
  // themselves, app.js; the status is theirs then): only what still reads as it left it.
  function recovered(detail) {
    if (!gaveUp || (detail.target !== gaveUp.target && gaveUp.target.isConnected)) return;
    const notice = $("#notice"), status = $("#live-status");
    if (notice && notice.textContent === gaveUp.notice) notice.textContent = "";
    if (status && status.textContent === gaveUp.status) setStatus("", "");
    gaveUp = null;
  }

  function failed(e) {
    const detail = e.detail, xhr = detail.xhr;
    if (!xhr || !RETRY_STATUSES.has(xhr.status) || !detail.requestConfig) return;
    if (xhr.tpRetryOf) { giveUp(detail); return; }
    const kind = kindOf(detail.requestConfig.path);
    setStatus("stale", `The server dropped that ${kind.noun}; sending it again…`);
    setTimeout(() => {
      if (stillWanted(detail)) resend(detail);
    }, delayOf(xhr));
  }

  // After an answer is swapped in (live.js has set the status of the panels by then): the server
  // answers again, and a retry's answer says it was one.
  function answered(e) {
    const detail = e.detail, xhr = detail.xhr;
    if (!xhr || !detail.successful) return;
    recovered(detail);
    if (!xhr.tpRetryOf) return;
    const kind = kindOf(detail.requestConfig.path);
    const status = $("#live-status");
    const problem = status && status.dataset.state === "error" ? " " + status.textContent : "";
    setStatus(problem ? "error" : "retried", `The server dropped that ${kind.noun}; ${kind.done}.${problem}`);
  }

  document.body.addEventListener("htmx:beforeRequest", e => {
    const xhr = e.detail.xhr;
    if (sending) xhr.tpRetryOf = sending;
    if (e.detail.target) latest.set(e.detail.target, xhr);
  });
  document.body.addEventListener("htmx:responseError", failed);
  document.body.addEventListener("htmx:sendError", failed);
  document.body.addEventListener("htmx:afterRequest", answered);

  window.TPRetry = {RETRY_DELAY_MS, RETRY_AFTER_MAX_MS};
})();
