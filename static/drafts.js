// Nothing typed is lost: the draft (code and cursor) lives in localStorage, the address bar always
// holds a link to the code on screen, examples are history entries, and whatever replaces code
// the user wrote offers "Restore your code". app.js calls window.tpDrafts.start(app) once.
//
// Precedence on load: an explicit link (a #z= / #code= hash, else ?example=) over the draft, and
// the draft over the page's default example. A link that replaces a draft with different code
// offers the draft back; a damaged link or an unknown example says so and keeps the draft.
(() => {
  "use strict";
  const DRAFT_KEY = "tp-draft";
  const ADDRESS_DEBOUNCE_MS = 400;
  const SAVE_AT_ONCE_MAX = 8192;   // characters; a 4 KB draft saves in ~0.3 ms
  const SAVE_DEBOUNCE_MS = 150;
  const DAMAGED = "That share link is damaged.";
  const $ = sel => document.querySelector(sel);

  // ---- links: #z=<base64url(deflate-raw(UTF-8))>; old links #code=<base64url(UTF-8)> still open ----
  const b64url = {
    encode(bytes) {
      let bin = "";
      for (let i = 0; i < bytes.length; i += 0x8000) {
        bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
    decode(text) {   // throws on anything that is not base64url
      if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error("not base64url");
      return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), c => c.charCodeAt(0));
    },
  };
  const compressing = typeof CompressionStream === "function";

  async function piped(bytes, transform) {
    const stream = new Blob([bytes]).stream().pipeThrough(transform);
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  async function shareHash(code) {
    const bytes = new TextEncoder().encode(code);
    if (!compressing) return "#code=" + b64url.encode(bytes);
    return "#z=" + b64url.encode(await piped(bytes, new CompressionStream("deflate-raw")));
  }

  const isShareHash = hash => /^#(z|code)=/.test(hash);

  // The code in a share hash, or null when the link is damaged (bad base64, bad deflate data,
  // bytes that are not UTF-8): a damaged link must never put garbage over the draft.
  async function decodeHash(hash) {
    const m = hash.match(/^#(z|code)=(.*)$/s);
    try {
      let bytes = b64url.decode(m[2]);
      if (m[1] === "z") bytes = await piped(bytes, new DecompressionStream("deflate-raw"));
      return new TextDecoder("utf-8", {fatal: true}).decode(bytes);
    } catch (err) {
      return null;
    }
  }

  // ---- state ----
  let app = null;            // {editor, getCode, setCode, run} from app.js
  let examples = [];
  let base = null;           // id of the example the code on screen came from (its claim)
  let restorable = null;     // {code, selection, base}: what "Restore your code" brings back
  let addressTimer = null;
  let saveTimer = null;
  let addressSeq = 0;
  const zLink = {code: null, hash: null};   // the share hash of the latest code, kept ready

  const exampleById = id => examples.find(e => e.id === id) || null;
  const exampleWithCode = code => examples.find(e => e.code.trimEnd() === code.trimEnd()) || null;
  const selection = () => (app.editor ? app.editor.getSelection() : null);
  const snapshot = () => ({code: app.getCode(), selection: selection(), base});

  function show(code, sel, fromExample) {
    // The same text is not replaced (that would be an undo step and move the cursor to 0).
    if (code !== app.getCode()) {
      if (app.editor) app.editor.setDoc(code, sel); else app.setCode(code);
    } else if (sel && app.editor) {
      app.editor.setSelection(sel);
    }
    base = fromExample;
    claimFollowsCode();
  }

  // ---- the draft ----
  function readDraft() {
    try {
      const d = JSON.parse(localStorage.getItem(DRAFT_KEY) || "null");
      return d && typeof d.code === "string" ? d : null;
    } catch (err) {
      return null;
    }
  }

  function saveDraft() {
    clearTimeout(saveTimer);
    try {
      // address: the link on screen when saved. The address follows the code only after a
      // pause, so a reload right after typing still shows the link the draft was edited from.
      const address = location.search + location.hash;
      localStorage.setItem(DRAFT_KEY, JSON.stringify({...snapshot(), address, savedAt: Date.now()}));
    } catch (err) { /* storage full or off: the address bar still holds the code */ }
  }

  // ---- the address bar follows the code ----
  async function linkFor(code) {
    const ex = base && exampleById(base);
    if (ex && ex.code === code) return location.pathname + "?example=" + encodeURIComponent(ex.id);
    if (zLink.code !== code) Object.assign(zLink, {code, hash: await shareHash(code)});
    return location.pathname + zLink.hash;
  }

  async function syncAddress() {
    clearTimeout(addressTimer);
    const seq = ++addressSeq, state = snapshot();
    const link = await linkFor(state.code);
    if (seq !== addressSeq) return;   // the code moved on while this one was being compressed
    history.replaceState(state, "", link);
    saveDraft();
  }

  // The draft is saved at once on every edit and cursor move (a save left to pagehide was lost
  // now and then on an immediate reload); past SAVE_AT_ONCE_MAX characters a save costs
  // milliseconds (64 KB: ~6 ms in Chromium here), so it waits for a pause in typing.
  function onEditor(docChanged) {
    clearTimeout(saveTimer);
    if (app.getCode().length <= SAVE_AT_ONCE_MAX) saveDraft();
    else saveTimer = setTimeout(saveDraft, SAVE_DEBOUNCE_MS);
    if (!docChanged) return;
    claimFollowsCode();
    $("#share-status").textContent = "";   // "Link copied" was about the code before this edit
    const code = app.getCode();
    shareHash(code).then(hash => { if (app.getCode() === code) Object.assign(zLink, {code, hash}); });
    clearTimeout(addressTimer);
    addressTimer = setTimeout(syncAddress, ADDRESS_DEBOUNCE_MS);
  }

  // Edited code still "is" the example while it keeps at least half of the example's lines.
  function resembles(code, ex) {
    const have = new Set(code.split("\n").map(l => l.trim()));
    const want = ex.code.split("\n").map(l => l.trim()).filter(Boolean);
    return want.filter(l => have.has(l)).length * 2 >= want.length;
  }

  // ---- the claim belongs to the example: shown while the code is the example's ----
  function claimFollowsCode() {
    const code = app.getCode();
    const from = exampleById(base);
    if (!from || !resembles(code, from)) base = null;   // it is the user's code now
    const ex = exampleById(base) || exampleWithCode(code);
    const claim = $("#claim");
    const select = $("#examples");
    const same = Boolean(ex) && ex.code.trimEnd() === code.trimEnd();
    if (select) select.value = same ? ex.id : "";
    if (!claim) return;
    claim.hidden = !ex;
    if (!ex) return;
    claim.classList.toggle("claim-stale", !same);
    claim.replaceChildren();
    const label = document.createElement("strong");
    label.textContent = same ? "Look for:" : `Look for (in the example “${ex.title}” as it was):`;
    const text = document.createElement("span");
    text.id = "claim-text";
    text.textContent = ex.claim;   // textContent: never parsed as HTML
    claim.append(label, " ", text);
  }

  // ---- messages and "Restore your code" ----
  function say(message) {
    const bar = $("#draft-bar");
    $("#draft-msg").textContent = message;
    bar.hidden = !message;
  }

  function offerRestore(previous, message) {
    restorable = previous;
    $("#restore-code").hidden = false;
    say(message);
  }

  function dismiss() {
    $("#restore-code").hidden = true;
    say("");
  }

  function restore() {
    if (!restorable) return;
    const back = restorable;
    restorable = null;
    show(back.code, back.selection, back.base || null);
    dismiss();
    say("Your code is back (Ctrl+Z in the editor undoes this).");
    saveDraft();
    syncAddress();
    app.run();
    if (app.editor) app.editor.focus();
  }

  // Over code that is no example (and not empty) a replacement is offered back.
  function worthKeeping(code, replacement) {
    return code.trim() !== "" && code !== replacement && !exampleWithCode(code);
  }

  // ---- examples are history entries ----
  function loadExample(id) {
    const ex = exampleById(id);
    if (!ex) return;
    const before = snapshot();
    clearTimeout(addressTimer);
    addressSeq++;                                     // a pending sync would describe old code
    history.replaceState(before, "", location.href);  // Back comes here, to this code
    if (worthKeeping(before.code, ex.code)) {
      offerRestore(before, `Loaded the example “${ex.title}” over your code.`);
    }
    show(ex.code, null, ex.id);
    history.pushState(snapshot(), "", location.pathname + "?example=" + encodeURIComponent(ex.id));
    saveDraft();
    app.run();
  }

  function onPopState(e) {
    const state = e.state;
    if (state && typeof state.code === "string") {
      if (state.code !== app.getCode()) {
        show(state.code, state.selection, state.base || null);
        app.run();
      }
      saveDraft();
    }
    // No state: an entry the browser made for a typed or pasted #link; hashchange opens it.
  }

  function onHashChange() {
    const state = history.state;
    if (state && state.code === app.getCode()) return;   // our own entry, handled by popstate
    if (isShareHash(location.hash)) openLink(snapshot());
  }

  // ---- on load ----
  // {code, selection, base, explicit} to show: the link's code, else the draft, else the page's.
  async function chooseCode(draft) {
    // The draft is this very link, edited (reloaded before the address caught up): keep it.
    if (draft && draft.address === location.search + location.hash) return {...draft, explicit: false};
    const shown = exampleWithCode(app.getCode());
    const page = {code: app.getCode(), selection: null, base: shown && shown.id, explicit: false};
    const fallback = draft ? {...draft, explicit: false} : page;
    if (isShareHash(location.hash)) {
      const code = await decodeHash(location.hash);
      if (code === null) {
        say(DAMAGED + (draft ? " Your own code is kept." : ""));
        return fallback;
      }
      return {code, selection: null, base: null, explicit: true};
    }
    const asked = new URLSearchParams(location.search).get("example");
    if (asked !== null) {
      const ex = exampleById(asked);
      if (ex) return {code: ex.code, selection: null, base: ex.id, explicit: true};
      return fallback;   // the page says the example is unknown (app/web/pages.py)
    }
    return fallback;
  }

  async function openLink(draft) {
    const chosen = await chooseCode(draft);
    let sel = chosen.selection;
    if (chosen.explicit && draft && draft.code === chosen.code) sel = draft.selection;
    if (chosen.explicit && draft && worthKeeping(draft.code, chosen.code)) {
      offerRestore(draft, "Opened the link: it replaced the code you had here.");
    }
    const changed = chosen.code !== app.getCode();
    show(chosen.code, sel, chosen.base || null);
    if (!chosen.explicit && draft && app.editor) app.editor.focus();   // back to where you typed
    saveDraft();
    await syncAddress();
    if (changed) app.run();
    return changed;
  }

  async function share() {
    const link = location.pathname + (await shareHash(app.getCode()));
    addressSeq++;
    history.replaceState(snapshot(), "", link);
    const url = location.origin + link;
    $("#share-box").hidden = false;
    $("#share-url").value = url;
    $("#share-url").select();
    const status = $("#share-status");
    try {
      await navigator.clipboard.writeText(url);
      status.textContent = "Link copied";
    } catch (err) {
      status.textContent = "Copy the link from the box (Ctrl+C)";
    }
  }

  function listen() {
    const source = $("#editor");
    if (app.editor) source.addEventListener("tp:editor", e => onEditor(e.detail.docChanged));
    else $("#code").addEventListener("input", () => onEditor(true));
    $("#examples").addEventListener("change", e => loadExample(e.target.value));
    $("#share").addEventListener("click", share);
    $("#restore-code").addEventListener("click", restore);
    $("#draft-dismiss").addEventListener("click", dismiss);
    window.addEventListener("popstate", onPopState);
    window.addEventListener("hashchange", onHashChange);
    window.addEventListener("pagehide", saveDraft);
    document.addEventListener("visibilitychange", () => { if (document.hidden) saveDraft(); });
  }

  // Resolves true when it replaced the page's code (and started a run of it).
  function start(appApi) {
    app = appApi;
    examples = JSON.parse($("#examples-data").textContent);
    const draft = readDraft();
    if ($("#draft-msg").textContent.trim()) $("#draft-bar").hidden = false;   // the server's notice
    listen();
    return openLink(draft);
  }

  window.tpDrafts = {start, loadExample, restore, shareHash, decodeHash, selection: () => selection()};
})();
