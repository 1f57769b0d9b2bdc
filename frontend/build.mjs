// One-off build: `npm ci && npm run build`. Outputs are committed so the app needs no Node.
import {build} from "esbuild";
import {copyFileSync, readFileSync, writeFileSync} from "node:fs";
import {createHash} from "node:crypto";

const out = "../static/vendor";
await build({entryPoints: ["editor.js"], bundle: true, minify: true, format: "iife",
             target: "es2020", outfile: `${out}/codemirror.js`, legalComments: "none"});

// Copied as published (already minified), with their licences: the API docs pages (/docs,
// /redoc) load these from our origin, so they work offline and under `script-src 'self'`.
const copies = {
  "htmx.min.js": "node_modules/htmx.org/dist/htmx.min.js",
  "swagger-ui-bundle.js": "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
  "swagger-ui.css": "node_modules/swagger-ui-dist/swagger-ui.css",
  "swagger-ui.LICENSE": "node_modules/swagger-ui-dist/LICENSE",
  "swagger-ui.NOTICE": "node_modules/swagger-ui-dist/NOTICE",
  "swagger-ui-bundle.js.LICENSE.txt": "node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt",
  "redoc.standalone.js": "node_modules/redoc/bundles/redoc.standalone.js",
  "redoc.LICENSE": "node_modules/redoc/LICENSE",
  "redoc.standalone.js.LICENSE.txt": "node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt",
};
for (const [name, from] of Object.entries(copies)) copyFileSync(from, `${out}/${name}`);

const files = ["codemirror.js", ...Object.keys(copies)].sort();
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
