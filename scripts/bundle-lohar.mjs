#!/usr/bin/env node
// Bundles lohar (src/agent/main.ts) into the single file dist/lohar.js that the
// guest image ships as /opt/bhatti/lohar.js. ESM output: under dist/ the root
// package.json says "type":"module"; in the guest (no package.json) Node 20.19+
// detects the module syntax. No source maps, minified: it is on the boot path.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
await build({
  entryPoints: [join(root, "src/agent/main.ts")],
  outfile: join(root, "dist/lohar.js"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
