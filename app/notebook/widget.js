// The panels widget (app/notebook/display.py): the panels' HTML from the kernel, focus, and for a
// `%%tensors --steps` cell its steps. A click or Enter on a tensor row shows that row's stride
// diagram and hides the others, as on the page; the slider (or its arrow keys) shows the panels
// after each step, its last position the cell's end. No network, no imports. Every lookup is
// inside this widget's own element: a notebook may show many panels, and their ids repeat.
function render({ model, el }) {
  el.innerHTML = "";
  const bar = document.createElement("div");
  bar.className = "tp-nb-steps"; // outside the panels' scoped CSS: styled here
  bar.style.cssText = "display:flex;flex-wrap:wrap;gap:6px 10px;align-items:center;margin:4px 0 6px;font:13px system-ui,sans-serif";
  const body = document.createElement("div");
  el.append(bar, body);
  let focused = "";

  const focus = (row) => {
    const root = body.querySelector(".tp-nb");
    for (const r of root.querySelectorAll("tr.trow")) {
      const on = r === row;
      r.classList.toggle("focused", on);
      r.setAttribute("aria-selected", on ? "true" : "false");
    }
    for (const f of root.querySelectorAll("figure.sd")) f.hidden = f.dataset.t !== row.dataset.t;
  };
  const draw = (html) => {
    body.innerHTML = html; // our own templates' output, escaped there
    const root = body.querySelector(".tp-nb");
    if (!root) return;
    const rows = Array.from(root.querySelectorAll("tr.trow"));
    const kept = rows.find((r) => r.dataset.name === focused); // the same tensor across steps
    if (kept) focus(kept);
    for (const row of rows) {
      const pick = () => {
        focus(row);
        focused = row.dataset.name || "";
        model.set("focus", focused);
        model.save_changes();
      };
      row.addEventListener("click", pick);
      row.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          pick();
        }
      });
    }
  };
  const steps = () => model.get("steps_html") || [];
  const build = () => {
    const n = steps().length;
    bar.innerHTML = "";
    bar.style.display = n === 0 ? "none" : "flex";
    if (n === 0) return draw(model.get("html"));
    const slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0";
    slider.max = String(n); // 0..n-1: after step k+1; n: the cell's end
    slider.value = String(n);
    slider.setAttribute("aria-label", "Step through the cell");
    slider.style.cssText = "flex:1 1 12rem;min-width:8rem;max-width:24rem";
    const label = document.createElement("span");
    label.className = "tp-nb-step-label";
    label.setAttribute("aria-live", "polite");
    const show = () => {
      const k = Number(slider.value);
      const labels = model.get("step_labels") || [];
      label.textContent = k >= n ? `End of the cell (${n} steps)` : labels[k] || `Step ${k + 1}`;
      draw(k >= n ? model.get("html") : steps()[k]);
    };
    slider.addEventListener("input", show);
    bar.append(slider, label);
    show();
  };
  build();
  model.on("change:html", build);
  model.on("change:steps_html", build);
  return () => {
    model.off("change:html", build);
    model.off("change:steps_html", build);
  };
}

export default { render };
