// Entry point bundled by build.mjs into static/vendor/codemirror.js (an IIFE exposing window.TPEditor).
// The setup is basicSetup's list spelled out, so the editor can behave like a Python editor:
// four-space indents, and Enter that is a newline unless the user picked a completion.
import {
  EditorView, Decoration, keymap, lineNumbers, highlightActiveLineGutter, highlightSpecialChars,
  drawSelection, dropCursor, rectangularSelection, crosshairCursor, highlightActiveLine,
} from "@codemirror/view";
import {EditorState, EditorSelection, StateEffect, StateField, Prec} from "@codemirror/state";
import {
  foldGutter, indentOnInput, indentUnit, syntaxHighlighting, HighlightStyle,
  bracketMatching, foldKeymap,
} from "@codemirror/language";
import {tags} from "@lezer/highlight";
import {defaultKeymap, history, historyKeymap, indentMore, indentLess} from "@codemirror/commands";
import {searchKeymap, highlightSelectionMatches} from "@codemirror/search";
import {
  autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap, completionStatus,
  currentCompletions, selectedCompletionIndex, setSelectedCompletion, acceptCompletion,
} from "@codemirror/autocomplete";
import {lintKeymap} from "@codemirror/lint";
import {python} from "@codemirror/lang-python";

// CodeMirror's default highlight style with every colour at 4.5:1 or more on white and on the
// active line (WCAG AA): its #e40 escapes (3.84:1), #f00 errors and #085 types fell short.
const highlightStyle = HighlightStyle.define([
  {tag: tags.meta, color: "#404740"},
  {tag: tags.link, textDecoration: "underline"},
  {tag: tags.heading, textDecoration: "underline", fontWeight: "bold"},
  {tag: tags.emphasis, fontStyle: "italic"},
  {tag: tags.strong, fontWeight: "bold"},
  {tag: tags.strikethrough, textDecoration: "line-through"},
  {tag: tags.keyword, color: "#708"},
  {tag: [tags.atom, tags.bool, tags.url, tags.contentSeparator, tags.labelName], color: "#219"},
  {tag: [tags.literal, tags.inserted], color: "#164"},
  {tag: [tags.string, tags.deleted], color: "#a11"},
  {tag: [tags.regexp, tags.escape, tags.special(tags.string)], color: "#a33a00"},
  {tag: tags.definition(tags.variableName), color: "#00f"},
  {tag: tags.local(tags.variableName), color: "#30a"},
  {tag: [tags.typeName, tags.namespace], color: "#06603f"},
  {tag: tags.className, color: "#167"},
  {tag: [tags.special(tags.variableName), tags.macroName], color: "#256"},
  {tag: tags.definition(tags.propertyName), color: "#00c"},
  {tag: tags.comment, color: "#8a3d00"},
  {tag: tags.invalid, color: "#c00"},
]);

const INDENT = "    ";   // PEP 8, and every example: a two-space line in a block is an IndentationError

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

// Tab with the completion list open takes the highlighted option (the first if none is): an
// explicit pick. Otherwise Tab and Shift-Tab indent the lines by one unit (four spaces).
function tabCompletesOrIndents(view) {
  if (completionStatus(view.state) === "active" && currentCompletions(view.state).length) {
    if (selectedCompletionIndex(view.state) === null || selectedCompletionIndex(view.state) < 0) {
      view.dispatch({effects: setSelectedCompletion(0)});
    }
    if (acceptCompletion(view)) return true;
  }
  return indentMore(view);
}

function setup() {
  return [
    lineNumbers(), highlightActiveLineGutter(), highlightSpecialChars(), history(), foldGutter(),
    drawSelection(), dropCursor(), EditorState.allowMultipleSelections.of(true), indentOnInput(),
    syntaxHighlighting(highlightStyle, {fallback: true}), bracketMatching(), closeBrackets(),
    // selectOnOpen: false - the list opens with nothing chosen, so Enter stays a newline until the
    // user moves into it (arrow keys) or asks for it (Ctrl-Space, then an arrow key).
    autocompletion({selectOnOpen: false}),
    rectangularSelection(), crosshairCursor(), highlightActiveLine(), highlightSelectionMatches(),
    indentUnit.of(INDENT), EditorState.tabSize.of(4),
    keymap.of([
      {key: "Tab", run: tabCompletesOrIndents, shift: indentLess},
      ...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...foldKeymap,
      ...completionKeymap, ...lintKeymap,
    ]),
  ];
}

function clampedSelection(doc, sel) {
  if (!sel) return undefined;
  const clamp = n => Math.max(0, Math.min(Number.isFinite(n) ? n : 0, doc.length));
  return EditorSelection.single(clamp(sel.anchor), clamp(sel.head));
}

function create(parent, {doc = "", onChange = () => {}, onRun = () => {}} = {}) {
  const runKeys = Prec.highest(keymap.of([
    {key: "Mod-Enter", preventDefault: true, run: () => { onRun(); return true; }},
  ]));
  // Drafts (static/drafts.js) listen for this on the parent: every edit and cursor move.
  const announce = EditorView.updateListener.of(u => {
    if (u.docChanged || u.selectionSet) {
      parent.dispatchEvent(new CustomEvent("tp:editor", {detail: {docChanged: u.docChanged}}));
    }
  });
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        runKeys, setup(), python(), errorLineField, stepLinesField, announce,
        EditorView.updateListener.of(u => { if (u.docChanged) onChange(u.state.doc.toString()); }),
        // tabindex: the text is already a tab stop (contenteditable); saying so lets checkers see
        // that the scroller holding it is reachable by keyboard (scrollable-region-focusable).
        EditorView.contentAttributes.of({"aria-label": "Python code editor", tabindex: "0"}),
      ],
    }),
  });
  return {
    view,
    getDoc: () => view.state.doc.toString(),
    // One transaction: the editor's own undo (Ctrl-Z) takes a replaced text back too.
    setDoc(text, selection) {
      const after = EditorState.create({doc: text}).doc;
      view.dispatch({changes: {from: 0, to: view.state.doc.length, insert: text},
                     selection: clampedSelection(after, selection) || EditorSelection.cursor(0),
                     effects: setErrorLine.of(null)});
    },
    getSelection() {
      const r = view.state.selection.main;
      return {anchor: r.anchor, head: r.head};
    },
    setSelection(selection) {
      view.dispatch({selection: clampedSelection(view.state.doc, selection), scrollIntoView: true});
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
