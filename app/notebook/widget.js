// The panels widget (app/notebook/display.py): the panels' HTML from the kernel, and focus.
// A click or Enter on a tensor row shows that row's stride diagram and hides the others, as on
// the page. No network, no imports. Every lookup is inside this widget's own element: a notebook
// may show many panels, and their ids (templates/_panels.html) repeat.
function render({ model, el }) {
  const draw = () => {
    el.innerHTML = model.get("html"); // our own templates' output, escaped there
    const root = el.querySelector(".tp-nb");
    if (!root) return;
    const rows = Array.from(root.querySelectorAll("tr.trow"));
    const figures = Array.from(root.querySelectorAll("figure.sd"));
    const focus = (row) => {
      const t = row.dataset.t;
      for (const r of rows) {
        const on = r === row;
        r.classList.toggle("focused", on);
        r.setAttribute("aria-selected", on ? "true" : "false");
      }
      for (const f of figures) f.hidden = f.dataset.t !== t;
      model.set("focus", row.dataset.name || "");
      model.save_changes();
    };
    for (const row of rows) {
      row.addEventListener("click", () => focus(row));
      row.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          focus(row);
        }
      });
    }
  };
  draw();
  model.on("change:html", draw);
  return () => model.off("change:html", draw);
}

export default { render };
