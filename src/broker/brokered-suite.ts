// Brokered secrets in real sandboxes (issue 11, the store side), for either
// engine: a bound secret reaches the sandbox only as a placeholder (env,
// secret files, templates, fork, stop/start), the sandbox trusts its own CA
// without flags (curl, Python, Node, git on debian; Node on minimal), and the
// host never holds a bound value or the CA key in plaintext.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { exec, sh, envOf, IMAGES_DIR } from "../testing/sandbox-api.js";
import { scanText, scanTree } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";
import { readKeyFile, Keyring } from "../secrets/keyring.js";
import { serverCert } from "./x509.js";
import { GUEST_TRUST } from "../protocol/agent.js";

const alnum = (n: number) => [...randomBytes(n)].map((b) => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[b % 62]).join("");
const cls = (c: string) => (/[0-9]/.test(c) ? "9" : /[a-z]/.test(c) ? "a" : /[A-Z]/.test(c) ? "A" : c);

/** Same length, prefix kept, same class at every position, not the value. */
export function assertPlaceholder(p: string | undefined, value: string, prefix: string): void {
  assert.ok(p, "a placeholder is there");
  assert.notEqual(p, value);
  assert.equal(p!.length, value.length);
  assert.ok(p!.startsWith(prefix));
  for (let i = 0; i < value.length; i++) assert.equal(cls(p![i]), cls(value[i]), `position ${i}`);
}

/** The sandbox's broker record, read from state.db, with the CA key decrypted (memory only). */
export async function brokerRecord(dataDir: string, sandboxId: string): Promise<{ caCert: string; caKey: string; placeholders: Record<string, string> } | null> {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try {
    const row = db.prepare("SELECT ca_cert, ca_key_enc, placeholders FROM sandbox_brokers WHERE sandbox_id = ?").get(sandboxId) as { ca_cert: string; ca_key_enc: Buffer; placeholders: string } | undefined;
    if (!row) return null;
    const key = readKeyFile(join(dataDir, "age.key"));
    if (key.kind !== "ok") throw new Error("no key");
    const caKey = await (await Keyring.fromIdentity(key.identities[0])).decrypt(row.ca_key_enc);
    return { caCert: row.ca_cert, caKey, placeholders: JSON.parse(row.placeholders) };
  } finally {
    db.close();
  }
}

/** The base64 body of a PEM key: what a plaintext copy anywhere would contain. */
export const pemBody = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");

/** vm: what QEMU holds open for a sandbox (its config drive, disks): regular files below 64 MiB, read through /proc/<pid>/fd. */
export function qemuFiles(sandboxId: string): Buffer[] {
  const out: Buffer[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(sandboxId)) continue;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          const st = statSync(`/proc/${pid}/fd/${fd}`);
          if (st.isFile() && st.size < 64 << 20) out.push(readFileSync(`/proc/${pid}/fd/${fd}`));
        } catch { /* closed meanwhile */ }
      }
    } catch { /* gone */ }
  }
  return out;
}

/** Env of every process of a sandbox as the host sees it (/proc/<pid>/environ of the pids in its cgroup). */
export function hostEnvirons(sandboxId: string): string {
  let out = "";
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(`/${sandboxId}`)) continue;
      out += readFileSync(`/proc/${pid}/environ`, "latin1") + "\n";
    } catch { /* gone */ }
  }
  return out;
}

export function brokeredSuite(engine: "ns" | "vm", opts: { full: boolean }): void {
  let d: Daemon;
  let alice: string;
  const sk = "sk-proj-" + alnum(40) + "-" + alnum(20);
  const gh = "ghp_" + alnum(36);
  const plain = "plain-" + randomBytes(12).toString("hex");
  const values = [sk, gh];
  const caKeys: string[] = [];

  before(async () => {
    d = await startDaemon({ args: ["--engine", engine, "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    alice = createUser(d.dataDir, "alice", ["--max-sandboxes", "8", "--max-cpus", "16", "--max-memory", "16384"]);
    for (const [name, value, hosts] of [["OPENAI", sk, ["api.openai.com"]], ["GH", gh, ["api.github.com", "*.githubusercontent.com"]], ["PLAIN", plain, null]] as const) {
      const r = await api(d, "POST", "/secrets", { key: alice, body: { name, value, ...(hosts ? { hosts, header: "authorization" } : {}) } });
      assert.equal(r.status, 201, r.text);
    }
  });
  after(async () => {
    if (!d) return;
    for (const sb of (await api(d, "GET", "/sandboxes", { key: alice })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key: alice });
    const out = d.output();
    assert.equal(await d.stop(), 0);
    for (const v of [...values, ...caKeys.map(pemBody)]) {
      assert.deepEqual(scanTree(d.dataDir, v), [], "data dir holds no bound value and no CA key");
      assert.deepEqual(scanTree(runtimeDirFor(d.dataDir), v), [], "runtime dir holds none");
      assert.ok(!scanText(out, v), "daemon output holds none");
    }
    cleanup(d.dataDir);
  });

  test(`[${engine}] a bound secret is a well-shaped placeholder in env, /proc and secret files; unbound ones unchanged; trust env set`, async () => {
    const c = await api(d, "POST", "/sandboxes", { key: alice, body: {
      name: `b-${engine}`, secrets: ["OPENAI", "PLAIN", { name: "GH", path: "/home/lohar/.config/gh/token" }], env: { MODE: "dev", CURL_CA_BUNDLE: "/custom/bundle.pem" },
    } });
    assert.equal(c.status, 201, c.text);
    const sb = c.json.sandbox ?? c.json;
    assert.deepEqual(sb.secret_versions, { OPENAI: 1, PLAIN: 1, GH: 1 });
    const rec = (await brokerRecord(d.dataDir, sb.id))!;
    assert.ok(rec, "a record for a sandbox holding a brokered secret");
    caKeys.push(rec.caKey);
    assert.deepEqual(Object.keys(rec.placeholders).sort(), ["GH", "OPENAI"]);

    const env = envOf((await exec(d, alice, sb.name, ["/usr/bin/env"])).stdout);
    assertPlaceholder(env.OPENAI, sk, "sk-proj-");
    assert.equal(env.OPENAI, rec.placeholders.OPENAI);
    assert.equal(env.PLAIN, plain, "an unbound secret is the value, as before");
    assert.equal(env.GH, undefined, "a file secret is not in env");
    assert.equal(env.MODE, "dev");
    assert.equal(env.SSL_CERT_FILE, GUEST_TRUST.bundle);
    assert.equal(env.REQUESTS_CA_BUNDLE, GUEST_TRUST.bundle);
    assert.equal(env.NODE_EXTRA_CA_CERTS, GUEST_TRUST.caCert);
    assert.equal(env.CURL_CA_BUNDLE, "/custom/bundle.pem", "--env beats the default layer");
    // The command's own environ, and every process of the sandbox seen from the host.
    const self = await sh(d, alice, sb.name, "cat /proc/self/environ | tr '\\0' '\\n'");
    assert.ok(self.stdout.includes(`OPENAI=${rec.placeholders.OPENAI}`), JSON.stringify(self));
    assert.ok(!values.some((v) => self.stdout.includes(v)));
    if (engine === "ns") {
      const host = hostEnvirons(sb.id);
      assert.ok(host.length > 0, "the host sees the sandbox's processes");
      assert.ok(!values.some((v) => host.includes(v)), "no process of the sandbox holds a bound value");
    } else {
      const files = qemuFiles(sb.id);
      assert.ok(files.length > 0, "QEMU's open files were found");
      for (const f of files) for (const v of values) assert.ok(!f.includes(v), "no file QEMU holds (config drive included) has a bound value");
    }
    const file = await sh(d, alice, sb.name, "cat /home/lohar/.config/gh/token");
    assert.equal(file.stdout, rec.placeholders.GH);
    assertPlaceholder(file.stdout, gh, "ghp_");

    // The sandbox writes what it holds to its disk: the host's copy of the disk has placeholders only.
    assert.equal((await sh(d, alice, sb.name, "env > /home/lohar/env.txt; cat /home/lohar/.config/gh/token >> /home/lohar/env.txt; sync")).exit_code, 0);
    if (engine === "ns") for (const v of values) assert.deepEqual(scanTree(d.dataDir, v), [], "the sandbox's disk holds no bound value");
    assert.deepEqual(scanTree(runtimeDirFor(d.dataDir), sk), []);

    // The CA: in the system bundle (after the image's own roots) and alone for Node.
    const ca = await sh(d, alice, sb.name, `cat ${GUEST_TRUST.caCert}; echo ===; tail -c ${Buffer.byteLength(rec.caCert)} ${GUEST_TRUST.bundle}`);
    assert.equal(ca.stdout, `${rec.caCert}===\n${rec.caCert}`);
    // The key never enters the sandbox.
    const grep = await sh(d, alice, sb.name, `grep -rl '${pemBody(rec.caKey).slice(0, 40)}' /etc /run /home /tmp 2>/dev/null; echo rc=$?`);
    assert.match(grep.stdout, /^rc=1\n$/);

    // Events: the injection says which secrets were brokered, never a value.
    const ev = await api(d, "GET", "/events?type=secret.injected", { key: alice });
    const inj = ev.json.events.at(-1).detail.secrets;
    assert.deepEqual(inj.map((s: { name: string; brokered?: boolean }) => [s.name, !!s.brokered]), [["OPENAI", true], ["PLAIN", false], ["GH", true]]);
    assert.ok(![...values, rec.placeholders.OPENAI].some((v) => ev.text.includes(v)));

    // Redaction: the sandbox's output has the placeholder, and that is what is redacted.
    const red = await exec(d, alice, sb.name, ["/bin/sh", "-c", "echo $OPENAI; cat /home/lohar/.config/gh/token"], { redact: true });
    assert.equal(red.stdout, "[REDACTED:OPENAI]\n[REDACTED:GH]");

    // Node trusts a server certificate signed by the sandbox CA, with no flag (NODE_EXTRA_CA_CERTS).
    const leaf = await serverCert({ certPem: rec.caCert, keyPem: rec.caKey }, ["localhost"]);
    await api(d, "PUT", `/sandboxes/${sb.name}/files?path=/tmp/leaf.pem`, { key: alice, raw: leaf.certPem });
    await api(d, "PUT", `/sandboxes/${sb.name}/files?path=/tmp/leaf.key`, { key: alice, raw: leaf.keyPem });
    const serve = `require("https").createServer({cert:require("fs").readFileSync("/tmp/leaf.pem"),key:require("fs").readFileSync("/tmp/leaf.key")},(q,s)=>{if(q.url!=="/")s.statusCode=404;s.end("tls-ok")}).listen(8443,"127.0.0.1",()=>require("fs").writeFileSync("/tmp/up",""))`;
    assert.equal((await api(d, "POST", `/sandboxes/${sb.name}/sessions`, { key: alice, body: { cmd: ["node", "-e", serve] } })).status, 201);
    const nodeFetch = await sh(d, alice, sb.name, `for i in $(seq 50); do [ -e /tmp/up ] && break; sleep 0.1; done; rm -f /tmp/leaf.key; node -e 'fetch("https://localhost:8443").then(r=>r.text()).then(t=>console.log(t),e=>{console.log("ERR",e.cause&&e.cause.code);process.exit(1)})'`);
    assert.equal(nodeFetch.stdout, "tls-ok\n", nodeFetch.stderr);
    // Control: without the sandbox CA, the same request fails verification (the trust really comes from it).
    const without = await sh(d, alice, sb.name, `env -u NODE_EXTRA_CA_CERTS node -e 'fetch("https://localhost:8443").then(()=>console.log("trusted"),e=>console.log("ERR",e.cause&&e.cause.code))'`);
    assert.match(without.stdout, /^ERR /);

    await api(d, "DELETE", `/sandboxes/${sb.name}`, { key: alice });
    assert.equal(await brokerRecord(d.dataDir, sb.id), null, "the record goes with the sandbox");
  });

  test(`[${engine}] debian: the system bundle keeps its roots plus the sandbox CA; curl, Python, Node and git trust it without flags`, { skip: !opts.full && "the ns suite covers debian in full" }, async () => {
    // --env still beats a secret of the same name (the precedence table is unchanged): the brokered one sits below it.
    const c = await api(d, "POST", "/sandboxes", { key: alice, body: { name: `deb-${engine}`, image: "debian", secrets: ["OPENAI", "GH"], env: { GH: "from-env" } } });
    assert.equal(c.status, 201, c.text);
    const sb = c.json.sandbox ?? c.json;
    const rec = (await brokerRecord(d.dataDir, sb.id))!;
    caKeys.push(rec.caKey);
    assert.equal((await sh(d, alice, sb.name, 'echo "$OPENAI $GH"')).stdout, `${rec.placeholders.OPENAI} from-env\n`);
    const system = readFileSync(join(IMAGES_DIR, "debian", "rootfs", GUEST_TRUST.bundle), "utf8");
    const bundle = await exec(d, alice, sb.name, ["cat", GUEST_TRUST.bundle]);
    assert.equal(bundle.stdout, system + (system.endsWith("\n") ? "" : "\n") + rec.caCert, "the image's roots, then the sandbox CA");
    const ver = await sh(d, alice, sb.name, `openssl verify -CAfile ${GUEST_TRUST.bundle} ${GUEST_TRUST.caCert}`);
    assert.match(ver.stdout, /OK/);

    const leaf = await serverCert({ certPem: rec.caCert, keyPem: rec.caKey }, ["localhost"]);
    await api(d, "PUT", `/sandboxes/${sb.name}/files?path=/tmp/leaf.pem`, { key: alice, raw: leaf.certPem });
    await api(d, "PUT", `/sandboxes/${sb.name}/files?path=/tmp/leaf.key`, { key: alice, raw: leaf.keyPem });
    const serve = `require("https").createServer({cert:require("fs").readFileSync("/tmp/leaf.pem"),key:require("fs").readFileSync("/tmp/leaf.key")},(q,s)=>{if(q.url!=="/")s.statusCode=404;s.end("tls-ok")}).listen(8443,"127.0.0.1",()=>require("fs").writeFileSync("/tmp/up",""))`;
    assert.equal((await api(d, "POST", `/sandboxes/${sb.name}/sessions`, { key: alice, body: { cmd: ["/opt/bhatti/node", "-e", serve] } })).status, 201);
    const wait = "for i in $(seq 50); do [ -e /tmp/up ] && break; sleep 0.1; done; rm -f /tmp/leaf.key; ";
    const curl = await sh(d, alice, sb.name, wait + "curl -sS https://localhost:8443/");
    assert.equal(curl.stdout, "tls-ok", curl.stderr);
    // curl's built-in default is the system bundle: trusted even without CURL_CA_BUNDLE.
    const curlBare = await sh(d, alice, sb.name, "env -u CURL_CA_BUNDLE -u SSL_CERT_FILE curl -sS https://localhost:8443/");
    assert.equal(curlBare.stdout, "tls-ok", curlBare.stderr);
    const py = await sh(d, alice, sb.name, `python3 -c 'import urllib.request; print(urllib.request.urlopen("https://localhost:8443/").read().decode())'`);
    assert.equal(py.stdout, "tls-ok\n", py.stderr);
    const pyBare = await sh(d, alice, sb.name, `env -u SSL_CERT_FILE -u REQUESTS_CA_BUNDLE python3 -c 'import urllib.request; print(urllib.request.urlopen("https://localhost:8443/").read().decode())'`);
    assert.equal(pyBare.stdout, "tls-ok\n", "Python's OpenSSL default paths lead to the system bundle");
    const node = await sh(d, alice, sb.name, `/opt/bhatti/node -e 'fetch("https://localhost:8443").then(r=>r.text()).then(t=>console.log(t))'`);
    assert.equal(node.stdout, "tls-ok\n", node.stderr);
    // (debian has no node on PATH: lohar's own Node binary stands for a user's.)
    // git over HTTPS: the TLS handshake succeeds (the server is no git server, so git then fails on the protocol, not on trust).
    const git = await sh(d, alice, sb.name, "env -u SSL_CERT_FILE -u CURL_CA_BUNDLE git ls-remote https://localhost:8443/repo.git 2>&1; true");
    assert.doesNotMatch(git.stdout, /certificate|SSL/i, git.stdout);
    assert.match(git.stdout, /repository .* not found/, "git reached the server over TLS and got its 404");
    const control = await sh(d, alice, sb.name, `curl -sS --cacert /dev/null https://localhost:8443/ 2>&1; true`);
    assert.match(control.stdout, /certificate|SSL|CA/i, "control: without the bundle the server is not trusted");
  });

  test(`[${engine}] templates, stop/start, fork and a daemon restart keep each sandbox's placeholders and CA; destroy removes the record`, { skip: engine !== "ns" && "lifecycle is engine-independent store logic: the ns suite runs it" }, async () => {
    const t = await api(d, "POST", "/templates", { key: alice, body: { name: "tpl", secrets: ["OPENAI", { name: "GH", path: "/home/lohar/gh" }] } });
    assert.equal(t.status, 201, t.text);
    assert.equal((await api(d, "GET", "/templates", { key: alice })).status, 200);
    const c = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "from-tpl", template: "tpl" } });
    assert.equal(c.status, 201, c.text);
    const id = c.json.id as string;
    const rec = (await brokerRecord(d.dataDir, id))!;
    caKeys.push(rec.caKey);
    const seen = async (name: string) => (await sh(d, alice, name, `echo "$OPENAI"; cat /home/lohar/gh; echo; cat ${GUEST_TRUST.caCert}`)).stdout;
    const expected = `${rec.placeholders.OPENAI}\n${rec.placeholders.GH}\n${rec.caCert}`;
    assertPlaceholder(rec.placeholders.OPENAI, sk, "sk-proj-");
    assert.equal(await seen("from-tpl"), expected, "a template's bound secrets are placeholders too");

    // stop/start: a new config drive, the same placeholders and CA (the disk may hold them).
    assert.equal((await api(d, "POST", "/sandboxes/from-tpl/stop", { key: alice })).status, 200);
    assert.equal((await api(d, "POST", "/sandboxes/from-tpl/start", { key: alice })).status, 200);
    assert.equal((await sh(d, alice, "from-tpl", `echo "$OPENAI"; cat ${GUEST_TRUST.caCert}`)).stdout, `${rec.placeholders.OPENAI}\n${rec.caCert}`);
    assert.deepEqual((await brokerRecord(d.dataDir, id))!.placeholders, rec.placeholders);

    // fork: the child's disk holds the parent's placeholders: it gets the parent's record.
    assert.equal((await sh(d, alice, "from-tpl", "echo \"$OPENAI\" > /home/lohar/saved")).exit_code, 0);
    const f = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "forked", from: "from-tpl" } });
    assert.equal(f.status, 201, f.text);
    const frec = (await brokerRecord(d.dataDir, f.json.id))!;
    assert.deepEqual(frec.placeholders, rec.placeholders);
    assert.equal(frec.caCert, rec.caCert);
    assert.equal((await sh(d, alice, "forked", `cat /home/lohar/saved; echo "$OPENAI"`)).stdout, `${rec.placeholders.OPENAI}\n${rec.placeholders.OPENAI}\n`);

    // A daemon restart: the sandbox runs on, and a new process's BrokerStore brokers it as before.
    assert.equal(await d.stop(), 0);
    const { openDb } = await import("../store/db.js");
    const { openKeyring } = await import("../secrets/open.js");
    const { SecretService } = await import("../secrets/service.js");
    const { BrokerStore } = await import("./store.js");
    const db = openDb(join(d.dataDir, "state.db"));
    try {
      const keyring = await openKeyring(join(d.dataDir, "age.key"), db);
      const broker = new BrokerStore(db, keyring, new SecretService(db, keyring));
      const sb = broker.forSandbox(id)!;
      assert.ok(sb, "forSandbox after a restart");
      assert.deepEqual(sb.secrets().map((x) => [x.name, x.placeholder, x.hosts]), [["OPENAI", rec.placeholders.OPENAI, ["api.openai.com"]], ["GH", rec.placeholders.GH, ["api.github.com", "*.githubusercontent.com"]]]);
      assert.equal((await sb.value("OPENAI"))!.toString(), sk);
      assert.deepEqual(await sb.ca(), { certPem: rec.caCert, keyPem: rec.caKey });
    } finally {
      db.close();
    }
    d = await startDaemon({ dataDir: d.dataDir, args: ["--engine", engine, "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    // Reattached in the background after the restart: a 503 "reattaching" until then.
    let after: { stdout: string } | undefined;
    for (let i = 0; i < 100 && !after; i++) {
      after = await sh(d, alice, "from-tpl", `echo "$OPENAI"`).catch((e: Error) => {
        if (!/reattaching|not running/.test(e.message)) throw e;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 200));
      });
    }
    assert.equal(after?.stdout, `${rec.placeholders.OPENAI}\n`, "the live sandbox kept its placeholder");

    for (const n of ["from-tpl", "forked"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key: alice })).status, 204);
    assert.equal(await brokerRecord(d.dataDir, id), null);
    assert.equal(await brokerRecord(d.dataDir, f.json.id), null);
    const db2 = new Database(join(d.dataDir, "state.db"), { readonly: true });
    try {
      assert.equal((db2.prepare("SELECT COUNT(*) AS n FROM snapshot_brokers").get() as { n: number }).n, 0, "the fork's temporary snapshot took its copy with it");
    } finally {
      db2.close();
    }
  });
}
