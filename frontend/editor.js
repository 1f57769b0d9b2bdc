// Entry point bundled by build.mjs into static/vendor/codemirror.js (an IIFE exposing window.TPEditor).
import {basicSetup} from "codemirror";
import {EditorView, Decoration, keymap} from "@codemirror/view";
import {EditorState, StateEffect, StateField, Prec} from "@codemirror/state";
import {python} from "@codemirror/lang-python";
import {indentWithTab} from "@codemirror/commands";

const setErrorLine = StateEffect.define();
const errorLineMark = Decoration.line({class: "cm-error-line"});

// The error line is state, not DOM, so CodeMirror keeps it across re-renders and scrolling.
const errorLineField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects) {
      if (e.is(setErrorLine)) {
        const n = e.value;
        if (!n || n < 1 || n > tr.state.doc.lines) return Decoration.none;
        return Decoration.set([errorLineMark.range(tr.state.doc.line(n).from)]);
      }
    }
    return tr.docChanged ? deco.map(tr.changes) : deco;
  },
  provide: f => EditorView.decorations.from(f),
});

// The step-through timeline's current statement: a range of lines, state like the error line.
const setStepLines = StateEffect.define();
const stepLineMark = Decoration.line({class: "cm-step-line"});

const stepLinesField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects) {
      if (e.is(setStepLines)) {
        const r = e.value;
        if (!r || r.from < 1 || r.from > tr.state.doc.lines) return Decoration.none;
        const to = Math.min(Math.max(r.to, r.from), tr.state.doc.lines);
        const marks = [];
        for (let n = r.from; n <= to; n++) marks.push(stepLineMark.range(tr.state.doc.line(n).from));
        return Decoration.set(marks);
      }
    }
    return tr.docChanged ? Decoration.none : deco;   // an edit makes the old steps meaningless
  },
  provide: f => EditorView.decorations.from(f),
});

function create(parent, {doc = "", onChange = () => {}, onRun = () => {}} = {}) {
  const runKeys = Prec.highest(keymap.of([
    {key: "Mod-Enter", preventDefault: true, run: () => { onRun(); return true; }},
  ]));
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        runKeys, basicSetup, keymap.of([indentWithTab]), python(), errorLineField, stepLinesField,
        EditorView.updateListener.of(u => { if (u.docChanged) onChange(u.state.doc.toString()); }),
        EditorView.contentAttributes.of({"aria-label": "Python code editor"}),
      ],
    }),
  });
  return {
    view,
    getDoc: () => view.state.doc.toString(),
    setDoc(text) {
      view.dispatch({changes: {from: 0, to: view.state.doc.length, insert: text},
                     effects: setErrorLine.of(null)});
    },
    markLine(n) {
      const effects = [setErrorLine.of(n)];
      if (n && n >= 1 && n <= view.state.doc.lines) {
        effects.push(EditorView.scrollIntoView(view.state.doc.line(n).from, {y: "nearest"}));
      }
      view.dispatch({effects});
    },
    markSteps(from, to) {
      const effects = [setStepLines.of(from ? {from, to} : null)];
      if (from && from >= 1 && from <= view.state.doc.lines) {
        effects.push(EditorView.scrollIntoView(view.state.doc.line(from).from, {y: "nearest"}));
      }
      view.dispatch({effects});
    },
    focus: () => view.focus(),
  };
}

window.TPEditor = {create};
