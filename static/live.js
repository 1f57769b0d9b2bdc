// Calm live mode, for static/app.js (loaded before it): while the code is half typed, the last
// good panels stay, dimmed, and the problem goes in one status line that changes at most once per
// typing pause: only the answer to the latest code is shown, "running…" only past BUSY_AFTER_MS,
// and the same text is never set twice. Code that does not parse is answered by the server's parse
// (app/web/pages.py retargets it to #live-status); a live run that fails on the line being typed
// is held back until the user stops (SETTLE_MS), then shown in full by a fresh run.
(() => {
  "use strict";
  const BUSY_AFTER_MS = 300;   // "running…" only for a slow run: a quick one changes nothing
  const SETTLE_MS = 1500;      // an error on the line being typed shows in full after this pause
  const $ = sel => document.querySelector(sel);

  // The 1-based line where two versions of the code first differ.
  function changedLine(before, after) {
    const n = Math.min(before.length, after.length);
    let i = 0;
    while (i < n && before.charCodeAt(i) === after.charCodeAt(i)) i++;
    let line = 1;
    for (let k = 0; k < i; k++) if (after.charCodeAt(k) === 10) line++;
    return line;
  }

  function inert(html) {   // parsed, never run: a template's content executes nothing
    const t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  // The error a panels answer carries, read from its opening tag alone (data-error-*).
  function panelsError(html) {
    const m = /<div id="panels"[^>]*>/.exec(html);
    const panels = m && inert(m[0] + "</div>").firstElementChild;
    if (!panels || !panels.dataset.errorSummary) return null;
    return {line: parseInt(panels.dataset.errorLine, 10), text: panels.dataset.errorSummary};
  }

  function setStatus(state, text) {
    const el = $("#live-status");
    if (el.dataset.state === state && el.textContent === text) return;   // nothing new to announce
    el.dataset.state = state;
    el.textContent = text;
    el.title = text;
  }

  function markStale() {
    const panels = $("#panels");
    if (panels) panels.classList.add("stale");   // the next swap brings fresh, unmarked panels
  }

  // app: {form, textarea, getCode, rerun() (an explicit run), markLine(line)}.
  function create(app) {
    const st = {
      seq: 0,                        // counts edits: a live answer to older code is dropped
      line: null,                    // 1-based line of the latest edit: the line being typed
      prevCode: app.textarea.value,
      firing: "run",                 // the next #run-form request: "live" (a typing pause) or "run"
      shownCode: app.textarea.value, // the code the panels and the timeline on screen come from
      settle: null, busy: null, latestXhr: null,
    };

    // A problem kept off the panels: in the status line now; in full (the editor's error line,
    // or the error card of a fresh run) once the user stops, or at once when they asked.
    function showProblem(text, live, full) {
      markStale();
      setStatus("error", text);
      clearTimeout(st.settle);
      if (live) st.settle = setTimeout(full, SETTLE_MS); else full();
    }

    function syntaxProblem(html, live) {
      const node = inert(html).querySelector(".problem");
      const line = node ? parseInt(node.dataset.line, 10) : NaN;
      const text = node ? node.textContent : "The code does not parse";
      showProblem(text, live, () => { if (Number.isFinite(line)) app.markLine(line); });
    }

    document.body.addEventListener("htmx:beforeRequest", e => {
      if (e.detail.elt !== app.form) return;
      const xhr = e.detail.xhr;
      const again = xhr.tpRetryOf;   // static/retry.js resending a dropped run: as live as it was
      const tpLive = again ? again.tpLive === true : st.firing === "live";
      Object.assign(xhr, {tpLive, tpSeq: st.seq, tpCode: app.textarea.value});
      st.firing = "run";   // the Run button's submit reaches htmx without fire(): an explicit run
      st.latestXhr = xhr;
      clearTimeout(st.busy);
      st.busy = setTimeout(() => $("#busy").classList.add("on"), BUSY_AFTER_MS);
    });
    document.body.addEventListener("htmx:afterRequest", e => {
      if (e.detail.xhr !== st.latestXhr) return;   // one replaced by a newer run
      clearTimeout(st.busy);
      $("#busy").classList.remove("on");
    });
    document.body.addEventListener("htmx:beforeSwap", e => {
      const xhr = e.detail.xhr;
      if (!xhr || !("tpLive" in xhr)) return;   // not a run of the code (a step, a diagram)
      if (xhr.tpLive && xhr.tpSeq !== st.seq) { e.detail.shouldSwap = false; return; }   // typed on since
      const target = e.detail.target;
      if (target && target.id === "live-status") {
        e.detail.shouldSwap = false;
        syntaxProblem(e.detail.serverResponse, xhr.tpLive);
        return;
      }
      const err = xhr.tpLive && target && target.id === "panels" && panelsError(e.detail.serverResponse);
      if (err && err.line === st.line) {   // fails on the line being typed: likely half typed
        e.detail.shouldSwap = false;
        showProblem(err.text, true, app.rerun);
      }
    });

    return {
      edited(code) {
        st.line = changedLine(st.prevCode, code);
        st.prevCode = code;
        st.seq++;
        clearTimeout(st.settle);
      },
      codeSet(code) { st.prevCode = code; },
      fire(live) { clearTimeout(st.settle); st.firing = live ? "live" : "run"; },
      outOfDate() { markStale(); setStatus("stale", "Out of date: Run ▸ (Ctrl+Enter) shows this code"); },
      stale: () => !!$("#panels.stale"),
      shownCode: () => st.shownCode,
      // After a swap of the panels: a run's answer is the code on screen, and its status.
      swapped(xhr, panels) {
        if (!xhr || !("tpLive" in xhr)) return;
        clearTimeout(st.settle);
        st.shownCode = xhr.tpCode;
        this.showStatusOf(panels);
      },
      showStatusOf(panels) {
        setStatus(panels.dataset.errorSummary ? "error" : "", panels.dataset.errorSummary || "");
      },
      // A step of the run on screen, or a run the user typed over: panels older than the code.
      // (After htmx's settle, not its swap: the settle puts a swapped element's class back.)
      settled() { if (st.shownCode !== app.getCode()) markStale(); },
    };
  }

  window.TPLive = {create};
})();
