// apt resolution and .deb fetching against the real apt on this host (Debian's
// mirrors are reachable here). Needs root for apt-get download into a temp dir.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aptStamp, fetchDeb, parseAptShow, resolveDebs } from "./apt.js";
import { sha256File } from "./hashes.js";

const work = await mkdtemp(join(tmpdir(), "bhatti-apt-test-"));
test.after(() => rm(work, { recursive: true, force: true }));
const log = (): void => undefined;

test("parseAptShow reads stanzas", () => {
  const d = parseAptShow("Package: tini\nVersion: 0.19.0-1+b3\nArchitecture: amd64\nFilename: pool/main/t/tini/tini_0.19.0-1+b3_amd64.deb\nSHA256: ab\nDescription: x\n continued\n\nPackage: other\nVersion: 1\n");
  assert.equal(d.length, 2);
  assert.deepEqual(d[0], { package: "tini", version: "0.19.0-1+b3", architecture: "amd64", sha256: "ab", filename: "pool/main/t/tini/tini_0.19.0-1+b3_amd64.deb" });
});

test("resolveDebs gives apt's candidate and caches it while the stamp holds", async () => {
  const cache = join(work, "resolve");
  const a = await resolveDebs(["tini"], cache, log);
  assert.match(a.tini.sha256, /^[0-9a-f]{64}$/);
  assert.match(a.tini.filename, /^pool\/.*tini_.*\.deb$/);
  assert.ok(readdirSync(cache).length > 0, "the answer was cached");
  const b = await resolveDebs(["tini"], cache, log);
  assert.deepEqual(b, a);
  assert.equal(await aptStamp(), await aptStamp());
  await assert.rejects(resolveDebs(["no-such-package-bhatti"], cache, log, false), /no-such-package-bhatti/);
});

test("fetchDeb downloads with apt-get, verifies sha256, and reuses the cached file", async () => {
  const { tini } = await resolveDebs(["tini"], join(work, "resolve"), log);
  const debs = join(work, "debs");
  const empty = join(work, "no-archives"); // forces a real download
  const p = await fetchDeb(tini, debs, log, empty);
  assert.equal(await sha256File(p), tini.sha256);
  assert.equal(await fetchDeb(tini, debs, log, empty), p);
  assert.deepEqual(await readdir(debs), [p.split("/").pop()]);
  const wrong = { ...tini, sha256: "0".repeat(64), filename: "pool/x/tini_wrong.deb" };
  await assert.rejects(fetchDeb(wrong, debs, log, empty), /does not match apt's sha256/);
  assert.deepEqual(await readdir(debs), [p.split("/").pop()]); // no partial file left behind
});
