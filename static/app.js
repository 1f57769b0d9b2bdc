// Tensor Playground client: editor, live runs via htmx, focus, share links. No framework.
(() => {
  "use strict";
  // Live mode: code that does not parse costs the server a parse, not a run (app/web/pages.py),
  // so a run can follow the last keystroke closely.
  const DEBOUNCE_MS = 80;
  const $ = (sel, root = document) => root.querySelector(sel);
  const form = $("#run-form");
  const textarea = $("#code");
  let editor = null;
  let timer = null;
  let focusName = null;            // the user's focus survives re-runs, by tensor name
  const timings = (window.tpTimings = []);
  let lastEditAt = 0;
  let firedAt = 0;

  const getCode = () => (editor ? editor.getDoc() : textarea.value);
  // Calm live mode: static/live.js (status line, stale panels, answers to code typed over).
  const live = window.TPLive.create({
    form, textarea, getCode, rerun: () => run(), markLine: line => { if (editor) editor.markLine(line); },
  });

  // byTyping === true: fired by a typing pause (its problems stay in the status line); otherwise
  // the user asked (Run, Ctrl+Enter, an example), and whatever comes back is shown in full.
  function run(byTyping) {
    clearTimeout(timer);
    live.fire(byTyping === true);
    textarea.value = getCode();
    form.elements.focus.value = focusName || "";   // the server draws that tensor's diagram
    firedAt = performance.now();
    htmx.trigger(form, "tp-run");   // hx-sync="this:replace" aborts an older run in flight
  }

  function edited() {
    lastEditAt = performance.now();
    const code = getCode();
    live.edited(code);
    textarea.value = code;
    clearTimeout(timer);
    if (!$("#live").checked) { live.outOfDate(); return; }
    timer = setTimeout(() => run(true), DEBOUNCE_MS);
  }

  function setCode(code) {
    if (editor) editor.setDoc(code); else textarea.value = code;
    live.codeSet(code);
    clearTimeout(timer);
  }

  // ---- focus: one tensor highlighted across table, strides, storage and graph ----
  function setFocus(idx, byUser) {
    const panels = $("#panels");
    if (!panels || idx === null || idx === "") return;
    const row = panels.querySelector(`.trow[data-t="${idx}"]`);
    if (byUser && row) focusName = row.dataset.name;
    panels.querySelectorAll(".trow").forEach(r => {
      const on = r.dataset.t === String(idx);
      r.classList.toggle("focused", on);
      r.setAttribute("aria-selected", on ? "true" : "false");
    });
    panels.querySelectorAll("figure.sd").forEach(f => { f.hidden = f.dataset.t !== String(idx); });
    const figure = panels.querySelector(`figure.sd[data-t="${idx}"][data-lazy]`);
    if (figure) drawDiagram(figure);
    panels.querySelectorAll(".storage-svg .bar, .verdicts li").forEach(b =>
      b.classList.toggle("focus", b.dataset.t === String(idx)));
    panels.querySelectorAll(".graph-svg .gnode").forEach(n =>
      n.classList.toggle("focus", n.classList.contains("t" + idx)));
  }

  // Only the focused tensor's stride diagram comes with the panels; the others on demand, drawn
  // from the row's layout the placeholder carries (any replica can draw it).
  function drawDiagram(figure) {
    figure.removeAttribute("data-lazy");   // one request per placeholder
    htmx.ajax("POST", "/fragments/diagram", {target: figure, swap: "outerHTML", values: {
      t: figure.dataset.t, layout: figure.dataset.layout || ""}});
  }

  function restoreFocus() {
    const panels = $("#panels");
    let idx = panels.dataset.focus;
    if (focusName !== null) {
      const match = [...panels.querySelectorAll(".trow")].find(r => r.dataset.name === focusName);
      if (match) idx = match.dataset.t;
    }
    setFocus(idx, false);
  }

  document.addEventListener("click", e => {
    const row = e.target.closest(".trow, .storage-svg .bar[data-t], .verdicts li[data-t]");
    if (row) setFocus(row.dataset.t, true);
  });
  document.addEventListener("keydown", e => {
    const row = e.target.closest && e.target.closest(".trow");
    if (row && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); setFocus(row.dataset.t, true); }
    if (row && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      const next = e.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
      if (next) { next.focus(); setFocus(next.dataset.t, true); }
    }
  });

  // Hovering a grid cell lights up the storage cell(s) it reads, and vice versa.
  document.addEventListener("mouseover", e => {
    const cell = e.target.closest && e.target.closest(".stride-svg [data-off]");
    const svg = cell && cell.ownerSVGElement;
    document.querySelectorAll(".stride-svg .hot").forEach(n => n.classList.remove("hot"));
    if (cell) svg.querySelectorAll(`[data-off="${cell.dataset.off}"]`).forEach(n => n.classList.add("hot"));
  });

  // ---- step-through timeline: slider, buttons, arrow keys; each step's panels come from the server ----
  const stepItems = () => [...document.querySelectorAll("#timeline #tl-steps li")];

  function showStep(i) {
    const items = stepItems();
    if (!items.length) return;
    i = Math.max(0, Math.min(i, items.length - 1));
    const slider = $("#tl-slider");
    slider.value = String(i);
    slider.setAttribute("aria-valuetext", `step ${i + 1} of ${items.length}`);
    $("#tl-label").textContent = items[i].textContent;
    if (editor) editor.markSteps(+items[i].dataset.start, +items[i].dataset.end);
    memoryChart(i);
    const f = $("#step-form");
    f.elements.code.value = live.shownCode();   // the timeline's code (run again), even if edited since
    f.elements.step.value = String(i);
    f.elements.focus.value = focusName || "";
    htmx.trigger(f, "tp-step");
  }

  // Memory over the steps (templates/_memory_chart.html): the marker follows the slider; a chart
  // the run did not measure is fetched once, when the timeline is first used.
  function memoryChart(i) {
    const chart = $("#mem-chart");
    if (!chart) return;
    if (chart.dataset.lazy === "1") {
      chart.dataset.lazy = "asked";
      htmx.ajax("POST", "/fragments/memory-steps", {target: chart, swap: "outerHTML",
        values: {code: live.shownCode(), step: String(i)}});
      return;
    }
    const line = $(".mc-marker", chart), n = +chart.dataset.steps, w = +chart.dataset.w;
    if (!line || !n) return;
    const x = ((Math.max(0, Math.min(i, n - 1)) + 0.5) * w / n).toFixed(2);
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
  }
  document.body.addEventListener("htmx:afterSwap", () => { if ($("#mem-chart[data-steps]")) memoryChart(currentStep()); });

  function currentStep() {
    const slider = $("#tl-slider");
    return slider ? parseInt(slider.value, 10) : 0;
  }

  // A click on a line number steps to the next step of the statement starting there (after the
  // current one, wrapping), so a loop's iterations come one click after another; a line inside
  // a longer statement goes to the next step spanning it.
  function stepAtLine(line) {
    const items = stepItems(), cur = currentStep();
    const starts = items.some(it => +it.dataset.start === line);
    for (let k = 1; k <= items.length; k++) {
      const i = (cur + k) % items.length, it = items[i];
      if (starts ? +it.dataset.start === line : +it.dataset.start <= line && line <= +it.dataset.end) return i;
    }
    return -1;
  }

  document.addEventListener("click", e => {
    const gutter = e.target.closest && e.target.closest(".cm-lineNumbers .cm-gutterElement");
    if (!gutter || !stepItems().length) return;
    const i = stepAtLine(parseInt(gutter.textContent, 10));
    if (i >= 0) showStep(i);
  });

  document.addEventListener("input", e => { if (e.target.id === "tl-slider") showStep(parseInt(e.target.value, 10)); });
  document.addEventListener("click", e => {
    if (e.target.closest("#tl-prev")) showStep(currentStep() - 1);
    if (e.target.closest("#tl-next")) showStep(currentStep() + 1);
    if (e.target.closest("#tl-open")) showStep(currentStep());   // the page's run has no step's changes
  });
  document.addEventListener("keydown", e => {
    // The slider moves itself on arrow keys (and fires "input"); elsewhere in the timeline we do.
    if (!e.target.closest || !e.target.closest("#timeline") || e.target.id === "tl-slider") return;
    if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      e.preventDefault();
      showStep(currentStep() + (e.key === "ArrowRight" ? 1 : -1));
    }
  });

  // What the current step changed, highlighted in the panels (the list itself is server-rendered).
  function highlightChanges() {
    const panels = $("#panels");
    const list = $("#tl-changes");
    if (!panels) return;
    panels.querySelectorAll("[class*='chg-']").forEach(n =>
      n.classList.remove("chg-added", "chg-changed", "chg-storage"));
    if (!list) return;
    list.querySelectorAll("li[data-name]").forEach(li => {
      const row = [...panels.querySelectorAll(".trow")].find(r => r.dataset.name === li.dataset.name);
      if (row) row.classList.add(li.classList.contains("added") ? "chg-added" : "chg-changed");
    });
    list.querySelectorAll("li[data-storage]").forEach(li => {
      const strip = [...panels.querySelectorAll(".storage-svg")].find(s =>
        s.getAttribute("aria-label") === "Storage " + li.dataset.storage);
      if (strip) strip.classList.add("chg-storage");
    });
  }

  $("#live").addEventListener("change", e => {
    localStorage.setItem("tp-live", e.target.checked ? "1" : "0");
    if (e.target.checked && live.stale()) run(true);
  });

  // The share box drops down over the page (page.html): a click elsewhere or Escape closes it.
  function closeShareBox(e) {
    const box = $("#share-box");
    if (!box || box.hidden) return;
    if (e.type === "click" ? !e.target.closest(".share-wrap") : e.key === "Escape") box.hidden = true;
  }
  document.addEventListener("click", closeShareBox);
  document.addEventListener("keydown", closeShareBox);

  // ---- after each swap: error line, focus, timings ----
  document.body.addEventListener("htmx:afterSwap", e => {
    if (e.detail.target && e.detail.target.id === "notice") return;   // a busy notice, panels kept
    if (e.detail.target && e.detail.target.matches && e.detail.target.matches("figure.sd, #mem-chart")) return;   // a part drawn later, not new panels (it cleared the step's line mark)
    const panels = $("#panels");
    if (!panels) return;
    $("#notice").textContent = "";
    live.swapped(e.detail.xhr, panels);
    const line = parseInt(panels.dataset.errorLine, 10);
    if (editor) editor.markLine(Number.isFinite(line) ? line : null);
    const stepped = e.detail.requestConfig && e.detail.requestConfig.path === "/fragments/step";
    if (editor && !stepped) editor.markSteps(null);   // a fresh run: the timeline rests at its end
    restoreFocus();
    const now = performance.now();
    timings.push({sinceFire: now - firedAt, sinceEdit: now - lastEditAt});
    document.dispatchEvent(new CustomEvent("tp:panels", {detail: {line}}));
  });
  // After panels settle (and at start): what the step changed, and line numbers step only when
  // there are steps.
  function settled() {
    live.settled();
    highlightChanges();
    document.body.classList.toggle("has-steps", stepItems().length > 0);
  }
  document.body.addEventListener("htmx:afterSettle", settled);

  // ---- big results: the graph is drawn at its natural size (text >= 10 px) in a box that
  // scrolls; after a swap it scrolls the example's key node (graph_focus) into view ----
  const graphFocusOf = (() => {
    const data = $("#examples-data");
    const byId = new Map((data ? JSON.parse(data.textContent) : []).map(x => [x.id, x.graph_focus || ""]));
    return () => byId.get(($("#examples") || {}).value || "") || "";
  })();

  function showGraphFocus() {
    const wrap = $("#panels .graph-wrap");
    if (!wrap) return;
    const name = graphFocusOf();
    const text = name && [...wrap.querySelectorAll(".graph-svg g.node text")].find(t => t.textContent.trim() === name);
    if (!text) return;
    const box = text.closest("g.node").getBoundingClientRect(), view = wrap.getBoundingClientRect();
    wrap.scrollTop += box.top - view.top - (view.height - box.height) / 2;
    wrap.scrollLeft += box.left - view.left - (view.width - box.width) / 2;
  }
  document.body.addEventListener("htmx:afterSettle", e => {
    if (e.detail.target && e.detail.target.id === "panels") showGraphFocus();   // not a diagram's swap
  });
  showGraphFocus();

  function start() {
    htmx.process(form);   // our DOMContentLoaded handler may run before htmx's own
    if (window.TPEditor) {
      editor = window.TPEditor.create($("#editor"), {doc: textarea.value, onChange: edited, onRun: run});
      document.body.classList.add("cm-ready");
    } else {
      textarea.addEventListener("input", edited);
    }
    textarea.addEventListener("keydown", e => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); } });
    if (localStorage.getItem("tp-live") === "0") $("#live").checked = false;
    form.addEventListener("submit", () => { textarea.value = getCode(); firedAt = performance.now(); });
    const line = parseInt($("#panels").dataset.errorLine, 10);
    if (editor && Number.isFinite(line)) editor.markLine(line);
    live.showStatusOf($("#panels"));
    // Examples, share links and drafts: static/drafts.js (it may put other code up and run it).
    const drafts = window.tpDrafts;
    const opened = drafts ? drafts.start({editor, getCode, setCode, run}) : Promise.resolve(false);
    opened.then(replaced => {
      if (!replaced) restoreFocus();
      settled();
      document.body.dataset.ready = "1";
    });
  }

  window.tp = {run, setFocus, getCode, showStep, setCode: c => { setCode(c); edited(); }};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
