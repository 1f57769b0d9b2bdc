// The page's Embed button (templates/_embed_dialog.html): an <iframe> of /embed for the code on
// screen (its share hash, made by drafts.js) with the chosen panels and mode, and the host page's
// listener that sets the frame's height from the embed's messages (static/embed.js). The listener
// is the README's ("Embed in a course page") with this server's origin in it.
(() => {
  "use strict";
  const $ = sel => document.querySelector(sel);
  const dialog = $("#embed-dialog");
  if (!dialog) return;
  const FRAME_HEIGHT_PX = 480;   // until the first message sets the frame's own height

  const listener = origin => `<script>
window.addEventListener("message", function (event) {
  if (event.origin !== ${JSON.stringify(origin)}) return;
  var data = event.data;
  if (!data || data.type !== "tensor-playground:height" || typeof data.height !== "number") return;
  var frames = document.getElementsByTagName("iframe");
  for (var i = 0; i < frames.length; i++) {
    if (frames[i].contentWindow === event.source) frames[i].style.height = data.height + "px";
  }
});
</` + "script>";

  const escapeAttr = text => text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");

  function chosen() {
    const panels = [...dialog.querySelectorAll("input[name=panel]:checked")].map(b => b.value);
    const edit = dialog.querySelector("input[name=mode]:checked").value === "edit";
    return {panels, edit};
  }

  let frameId = "";
  async function snippet() {
    const {panels, edit} = chosen();
    if (!panels.length) return null;
    const hash = await window.tpDrafts.shareHash(window.tp.getCode());
    const query = `panels=${panels.join(",")}${edit ? "&edit=1" : ""}&id=${frameId}`;
    const src = `${location.origin}/embed?${query}${hash}`;
    const frame = `<iframe src="${escapeAttr(src)}" id="${frameId}" title="Tensor Playground: ${panels.join(", ")}"` +
      ` width="100%" height="${FRAME_HEIGHT_PX}" style="border:0" loading="lazy"></iframe>`;
    return frame + "\n" + listener(location.origin);
  }

  async function refresh() {
    const text = await snippet();
    const status = $("#embed-dialog-status");
    $("#embed-snippet").value = text || "";
    $("#embed-copy").disabled = !text;
    status.textContent = text ? "" : "Pick at least one panel.";
  }

  async function open() {
    frameId = "tp-" + Math.random().toString(36).slice(2, 8);   // one frame per snippet
    await refresh();
    dialog.showModal();
  }

  async function copy() {
    const box = $("#embed-snippet");
    box.select();
    const status = $("#embed-dialog-status");
    try {
      await navigator.clipboard.writeText(box.value);
      status.textContent = "Snippet copied";
    } catch (err) {
      status.textContent = "Copy the snippet from the box (Ctrl+C)";
    }
  }

  $("#embed-btn").addEventListener("click", open);
  $("#embed-copy").addEventListener("click", copy);
  dialog.addEventListener("change", refresh);
  // A click on the backdrop (outside the form) closes it, like the share box's click elsewhere.
  dialog.addEventListener("click", e => { if (e.target === dialog) dialog.close(); });
})();
