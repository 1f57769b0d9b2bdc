// One-off build: `npm ci && npm run build`. Outputs are committed so the app needs no Node.
import {build} from "esbuild";
import {copyFileSync, readFileSync, writeFileSync} from "node:fs";
import {createHash} from "node:crypto";

const out = "../static/vendor";
await build({entryPoints: ["editor.js"], bundle: true, minify: true, format: "iife",
             target: "es2020", outfile: `${out}/codemirror.js`, legalComments: "none"});
copyFileSync("node_modules/htmx.org/dist/htmx.min.js", `${out}/htmx.min.js`);

const files = ["codemirror.js", "htmx.min.js"];
const lines = files.map(f => {
  const digest = createHash("sha256").update(readFileSync(`${out}/${f}`)).digest("hex");
  return `${digest}  ${f}`;
});
writeFileSync(`${out}/SHA256SUMS`, lines.join("\n") + "\n");
// Resolved versions (from the lockfile's install), not the ranges in package.json.
const pkg = JSON.parse(readFileSync("package.json"));
const versions = Object.keys(pkg.devDependencies).sort().map(name => {
  const v = JSON.parse(readFileSync(`node_modules/${name}/package.json`)).version;
  return `${name} ${v}`;
}).join("\n");
writeFileSync(`${out}/VERSIONS`, versions + "\n");
