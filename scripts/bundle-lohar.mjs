#!/usr/bin/env node
// Bundles lohar (src/agent/main.ts) into the single file dist/lohar.js that the
// guest image ships as /opt/bhatti/lohar.js. It is on the create-latency path,
// so: minified, no source maps, and a plain script (IIFE) that reaches Node's
// built-in modules through process.getBuiltinModule (Node >= 20.16) rather
// than import/require. Such a file loads as CommonJS where no package.json
// says otherwise (the guest: ~15 ms faster than ESM there, which also costs a
// syntax-detection retry) and still runs under dist/, where "type":"module"
// makes Node load it as ESM.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const builtins = {
  name: "builtins",
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: "builtin" }));
    // Bare builtin names required by bundled packages (tar-stream's streamx: "events", "fs").
    b.onResolve({ filter: /^(events|fs)$/ }, (args) => ({ path: `node:${args.path}`, namespace: "builtin" }));
    b.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

await build({
  entryPoints: [join(root, "src/agent/main.ts")],
  outfile: join(root, "dist/lohar.js"),
  bundle: true,
  platform: "node",
  format: "iife",
  target: "node20",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [builtins],
});
