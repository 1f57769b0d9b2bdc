// Downloads (app/web/exports.py): each panel's card gets "SVG" and "PNG" buttons, and the top
// bar's Download menu saves every panel as one HTML file that opens offline, or the run as JSON.
// What is saved is what the panels on screen show: the code they came from (not code typed since,
// with Live off), the step the timeline is at, the focused tensor. The server runs that code
// again (a run it kept answers at once). A PNG is the panel's SVG drawn on a canvas here, at twice
// its size; the image is a data: URL, which the page's policy (img-src 'self' data:) allows.
(() => {
  "use strict";
  const PNG_SCALE = 2;                   // device pixels per SVG pixel
  const CANVAS_SIDE_MAX = 16384;         // what Chromium and Firefox draw on one canvas side
  const CANVAS_AREA_MAX = 16384 * 8192;  // and in all (Safari's cap is lower still)
  const REVOKE_AFTER_MS = 30000;         // the object URL outlives the click that saves it
  const $ = (sel, root = document) => root.querySelector(sel);
  const menu = $("#dl-menu");
  if (!menu) return;
  const panelNames = (menu.dataset.panels || "").split(",").filter(Boolean);
  let shownCode = $("#code") ? $("#code").value : "";

  // static/live.js marks each run of the page's form with the code it sent (xhr.tpCode); once
  // its panels are swapped in, that is the code on screen.
  document.body.addEventListener("htmx:afterSwap", e => {
    const xhr = e.detail.xhr, target = e.detail.target;
    if (target && target.id === "panels" && xhr && typeof xhr.tpCode === "string") shownCode = xhr.tpCode;
  });

  function onScreen() {
    const panels = $("#panels");
    const focused = panels && $(".trow.focused", panels);
    return {
      code: shownCode,
      step: panels ? panels.dataset.step || "" : "",
      focus: focused ? focused.dataset.name || "" : "",
    };
  }

  function setStatus(text, bad) {
    const el = $("#dl-status");
    el.textContent = text;
    el.classList.toggle("bad", !!bad);
  }

  async function post(path, fields) {
    const answer = await fetch(path, {method: "POST", body: new URLSearchParams(fields)});
    if (!answer.ok) {
      let why = `the server answered ${answer.status}`;
      try { why = (await answer.json()).detail || why; } catch (_) { /* not JSON: keep the status */ }
      throw new Error(why);
    }
    const named = /filename="([^"]+)"/.exec(answer.headers.get("Content-Disposition") || "");
    return {blob: await answer.blob(), name: named ? named[1] : "download"};
  }

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), REVOKE_AFTER_MS);
  }

  // The SVG drawn on a canvas: at PNG_SCALE, or less where the canvas could not hold it.
  async function pngOf(svgBlob) {
    const img = new Image();
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(await svgBlob.text());
    await img.decode();
    const w = img.naturalWidth, h = img.naturalHeight;
    const scale = Math.min(PNG_SCALE, CANVAS_SIDE_MAX / w, CANVAS_SIDE_MAX / h, Math.sqrt(CANVAS_AREA_MAX / (w * h)));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.floor(w * scale));
    canvas.height = Math.max(1, Math.floor(h * scale));
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    return new Promise((ok, fail) =>
      canvas.toBlob(b => (b ? ok(b) : fail(new Error("the picture is too big for a PNG"))), "image/png"));
  }

  async function download(button) {
    const format = button.dataset.format, panel = button.dataset.panel || "";
    const fields = onScreen();
    button.disabled = true;
    setStatus(format === "json" ? "Running the code for its JSON…" : "Drawing the download…");
    try {
      if (format === "json") {
        const {blob, name} = await post("/export/json", {code: fields.code});
        save(blob, name);
        setStatus(`Saved ${name}.`);
      } else if (format === "html") {
        const {blob, name} = await post("/export/html", fields);
        save(blob, name);
        setStatus(`Saved ${name}: it opens in any browser, offline.`);
      } else {
        const {blob, name} = await post("/export/svg", {...fields, panel});
        const png = format === "png";
        const file = png ? name.replace(/\.svg$/, ".png") : name;
        save(png ? await pngOf(blob) : blob, file);
        setStatus(`Saved ${file}.`);
      }
    } catch (err) {
      setStatus(`Not saved: ${err.message}.`, true);
    } finally {
      button.disabled = false;
    }
  }

  // Each panel's card: its own two buttons, put back after every swap of the panels.
  function cardButtons() {
    for (const name of panelNames) {
      const card = document.getElementById(`${name}-card`);
      if (!card || $(":scope > .dl-card", card)) continue;
      const title = card.querySelector("h2");
      const label = (title && title.firstChild && title.firstChild.textContent.trim()) || name;
      const box = document.createElement("div");
      box.className = "dl-card";
      for (const format of ["svg", "png"]) {
        const b = document.createElement("button");
        Object.assign(b, {type: "button", className: "dl-btn", textContent: format.toUpperCase()});
        Object.assign(b.dataset, {format, panel: name});
        b.setAttribute("aria-label", `Download the ${label} panel as ${format.toUpperCase()}`);
        b.title = b.getAttribute("aria-label");
        box.append(b);
      }
      card.prepend(box);
    }
  }

  document.addEventListener("click", e => {
    const button = e.target.closest && e.target.closest(".dl-btn");
    if (button) {
      if (menu.contains(button)) menu.open = false;
      download(button);
    } else if (menu.open && !menu.contains(e.target)) {
      menu.open = false;
    }
  });
  document.addEventListener("keydown", e => {
    if (e.key === "Escape" && menu.open) { menu.open = false; $("summary", menu).focus(); }
  });
  document.body.addEventListener("htmx:afterSettle", cardButtons);
  menu.hidden = false;
  cardButtons();
})();
