// The embed (templates/embed.html, app/web/embed.py): the code from the link's hash (decoded by
// drafts.js, as a share link is) or from the lesson the server put in #embed-example, run through
// /fragments/run, and only the cards the link names kept. Read-only shows the code as text;
// ?edit=1 gives the page's editor and runs as you type. Every size change is posted to the host
// page as {type: "tensor-playground:height", height, id} for its listener (README).
(() => {
  "use strict";
  const DEBOUNCE_MS = 80;   // the page's live mode (static/app.js)
  const HEIGHT_MESSAGE = "tensor-playground:height";
  const DAMAGED = "That share link is damaged.";
  const NO_CODE = "This embed has no code: its link needs a #z= share hash or ?example=<id>.";
  const DOWN = "The server is not answering; try again later.";
  const $ = (sel, root = document) => root.querySelector(sel);
  const main = $("#embed");
  const wanted = new Set((main.dataset.panels || "").split(",").filter(Boolean));
  let seq = 0;
  let inFlight = null;
  let timer = null;
  let editor = null;

  // ---- height: the host sets the iframe's height from this (its listener checks our origin) ----
  // "*" as the target: the host's origin is not known here, and the message says only a height.
  let lastHeight = -1;
  function postHeight() {
    const height = Math.ceil(main.getBoundingClientRect().height);
    if (height === lastHeight || window.parent === window) return;
    lastHeight = height;
    window.parent.postMessage({type: HEIGHT_MESSAGE, height, id: main.dataset.frameId || null}, "*");
  }

  function say(text, bad) {
    const status = $("#embed-status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("bad", Boolean(bad));
    postHeight();
  }

  function inert(html) {   // parsed, never run: a template's content executes nothing
    const t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  // Keep the chosen cards, the run's error (and its output), and the "Not run" card.
  function only(panels) {
    const ran = Boolean($("#status-card", panels));   // not the "Not run" card of a refused run
    panels.querySelectorAll("section.card[id$='-card']").forEach(card => {
      const name = card.id.slice(0, -"-card".length);
      if (name === "status") {
        if (!card.classList.contains("bad") && !$("pre.out", card)) card.remove();
      } else if (!wanted.has(name)) {
        card.remove();
      }
    });
    // A chosen panel this run has nothing for (no modules, no calls) says so, not a blank.
    for (const name of ran ? wanted : []) {
      if ($(`#${name}-card`, panels)) continue;
      const none = document.createElement("p");
      none.className = "card muted embed-none";
      none.dataset.panel = name;
      none.textContent = `Nothing to show in the ${name} panel for this code.`;
      panels.append(none);
    }
    // Inside a course page a link leaves the frame in a tab of its own; in-card anchors stay.
    panels.querySelectorAll("a[href]").forEach(a => {
      if (a.getAttribute("href").startsWith("#")) return;
      a.target = "_blank";
      a.rel = "noopener";
    });
    return panels;
  }

  // As the page (static/retry.js): a request a dropped replica answered 502, 503 or 504, or whose
  // connection broke, is sent once more after a moment (a 503's Retry-After, capped); an aborted
  // one (typed over) is not.
  const RETRY_STATUSES = new Set([502, 503, 504]);
  const pause = ms => new Promise(ok => setTimeout(ok, ms));
  async function post(path, params, signal) {
    const send = () => fetch(path, {method: "POST", signal, body: new URLSearchParams(params),
      headers: {"Content-Type": "application/x-www-form-urlencoded"}});
    let answer;
    try {
      answer = await send();
    } catch (err) {
      if (signal && signal.aborted) throw err;
      await pause(300);
      return send();
    }
    if (!RETRY_STATUSES.has(answer.status)) return answer;
    const after = Number(answer.headers.get("Retry-After"));
    await pause(answer.status === 503 && Number.isFinite(after) && after >= 0 ? Math.min(after * 1000, 3000) : 300);
    return send();
  }

  async function run(code) {
    const mine = ++seq;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    let answer, html;
    try {
      answer = await post("/fragments/run", {code, focus: ""}, inFlight.signal);
      html = await answer.text();
    } catch (err) {
      if (mine === seq) say(DOWN, true);
      return;
    }
    if (mine !== seq) return;   // code typed over since
    if (!answer.ok) {   // a refused request (the code past the size limit: 413) is no outage
      say(answer.status < 500 ? `The server refused this code (HTTP ${answer.status}).` : DOWN, true);
      return;
    }
    const retarget = answer.headers.get("HX-Retarget");
    if (retarget) {   // a syntax problem or a busy server: the last panels stay
      say(inert(html).textContent.trim().replace(/\s+/g, " "), true);
      return;
    }
    const fresh = $("#panels", inert(html));
    if (!fresh) { say(DOWN, true); return; }
    $("#panels").replaceWith(document.importNode(only(fresh), true));
    say("");
    focusRow($("#panels").dataset.focus);
    postHeight();   // at once: a frame out of view gets no ResizeObserver callback until shown
    main.dataset.ready = "1";
  }

  // ---- a focused row shows its stride diagram, drawn on demand as on the page ----
  function focusRow(idx) {
    const panels = $("#panels");
    if (idx === undefined || idx === null || idx === "") return;
    panels.querySelectorAll(".trow").forEach(r => {
      const on = r.dataset.t === String(idx);
      r.classList.toggle("focused", on);
      r.setAttribute("aria-selected", on ? "true" : "false");
    });
    panels.querySelectorAll("figure.sd").forEach(f => { f.hidden = f.dataset.t !== String(idx); });
    const lazy = $(`figure.sd[data-t="${idx}"][data-lazy]`, panels);
    if (lazy) drawDiagram(lazy);
    postHeight();
  }

  async function drawDiagram(figure) {
    figure.removeAttribute("data-lazy");
    const params = {t: figure.dataset.t, layout: figure.dataset.layout || ""};
    const answer = await post("/fragments/diagram", params).catch(() => null);
    if (!answer || !answer.ok || answer.headers.get("HX-Retarget")) return;
    const drawn = $("figure.sd", inert(await answer.text()));
    if (!drawn || !figure.isConnected) return;
    figure.replaceWith(document.importNode(drawn, true));
    postHeight();
  }

  document.addEventListener("click", e => {
    const row = e.target.closest && e.target.closest(".trow");
    if (row) focusRow(row.dataset.t);
  });
  document.addEventListener("keydown", e => {
    const row = e.target.closest && e.target.closest(".trow");
    if (row && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); focusRow(row.dataset.t); }
  });

  // ---- the code: from the hash, else the lesson's ----
  async function codeOfLink() {
    const hash = location.hash;
    if (/^#(z|code)=/.test(hash)) {
      const code = await window.tpDrafts.decodeHash(hash);
      return code === null ? {problem: DAMAGED} : {code, link: "/" + hash};
    }
    const lesson = $("#embed-example");
    if (lesson) return {code: lesson.textContent, link: "/?example=" + encodeURIComponent(main.dataset.example)};
    return {problem: NO_CODE};
  }

  function edited(code) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      run(code);
      // The link opens what is in the frame now, not what the page first had.
      window.tpDrafts.shareHash(code).then(hash => {
        if (editor && editor.getDoc() === code) $("#embed-open").href = "/" + hash;
      });
    }, DEBOUNCE_MS);
  }

  function showCode(code) {
    const host = $("#embed-editor");
    if (host && window.TPEditor) {
      editor = window.TPEditor.create(host, {doc: code, onChange: edited, onRun: () => run(editor.getDoc())});
    } else {   // textContent: never parsed as HTML
      (host || $("#embed-pre code")).textContent = code;
    }
  }

  async function start() {
    new ResizeObserver(postHeight).observe(main);
    postHeight();
    // The code in the hash opens on the page even when the frame cannot show it (a bad panel).
    if (/^#(z|code)=/.test(location.hash)) $("#embed-open").href = "/" + location.hash;
    if (main.dataset.ready === "notice") return;   // the server said what is wrong with the link
    const chosen = await codeOfLink();
    if (chosen.problem) {
      say(chosen.problem, true);
      $(".embed-code").hidden = true;
      main.dataset.ready = "problem";
      postHeight();
      return;
    }
    $("#embed-open").href = chosen.link;
    showCode(chosen.code);
    say("running…");
    postHeight();
    run(chosen.code);
  }

  // The host moved the frame to other code (a new #z=): the shell is the same, so start afresh.
  window.addEventListener("hashchange", () => location.reload());

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
