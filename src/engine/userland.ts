// Test support, shared by the ns and vm engines: what a user of the `debian`
// image expects to find (a normal Linux userland), checked in one real
// sandbox created through the Engine interface.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { GUEST } from "../protocol/agent.js";
import { execIn, newId, specFor } from "./conformance.js";
import type { CreateSpec, Engine, RunningSandbox } from "./types.js";

export function userlandSuite(makeEngine: () => Promise<Engine>, image: string): void {
  let engine: Engine;
  let sb: RunningSandbox;
  let spec: CreateSpec;
  const bash = (script: string) => execIn(sb, ["/bin/bash", "-lc", script]);

  describe(`userland of image ${image}`, () => {
    before(async () => {
      engine = await makeEngine();
      spec = specFor(newId("ul"), { env: { FROM_CONFIG: "yes" } }, { image });
      sb = await engine.create(spec);
    });
    after(async () => {
      if (sb) await engine.destroy(sb.id, sb.state);
    });

    test("uid, gid, home and login shell of the guest user", async () => {
      const r = await execIn(sb, ["/bin/sh", "-c", 'id -u; id -g; id -un; echo "$HOME"; getent passwd "$(id -u)" | cut -d: -f6,7; stat -c "%u:%g" "$HOME"; getent group 1000']);
      assert.equal(r.exit.exit_code, 0, r.stderr.toString());
      const [uid, gid, name, home, pw, owner, group] = r.stdout.toString().trim().split("\n");
      assert.deepEqual([uid, gid, name, home], ["1000", "1000", GUEST.user.name, GUEST.user.home]);
      assert.equal(pw, `${GUEST.user.home}:/bin/bash`);
      assert.equal(owner, "1000:1000");
      assert.equal(group, `${GUEST.user.name}:x:1000:`);
    });

    test("bash -lc works, with the sandbox env, and printenv is there", async () => {
      const r = await bash('echo "$0 $BASH_VERSION"; shopt -q login_shell && echo login; printenv FROM_CONFIG; printenv HOME');
      assert.equal(r.exit.exit_code, 0, r.stderr.toString());
      const [first, login, fromConfig, home] = r.stdout.toString().trim().split("\n");
      assert.match(first, /^\/bin\/bash 5\./);
      assert.equal(login, "login");
      assert.equal(fromConfig, "yes");
      assert.equal(home, GUEST.user.home);
    });

    test("git, python3 with ssl and venv, curl, jq, make, zip are there", async () => {
      const r = await bash([
        "git --version", "python3 -c 'import ssl, sys; print(ssl.OPENSSL_VERSION.split()[0], sys.version_info[0])'",
        "curl --version | head -1", "echo '{\"a\":[1,2]}' | jq -c .a", "make --version | head -1", "zip -v | sed -n 2p", "unzip -v | head -1",
        "xz --version | head -1", "ssh -V 2>&1", "less --version | head -1", "tini --version", "command -v ps find grep sed script",
        // --without-pip: ensurepip's wheel install takes a minute under TCG; ensurepip itself must be there
        "cd /tmp && python3 -m venv --without-pip v && v/bin/python -c 'import ensurepip' && python3 -m pip --version >/dev/null && echo venv-ok",
      ].join(" && "));
      assert.equal(r.exit.exit_code, 0, `${r.stdout}\n${r.stderr}`);
      const out = r.stdout.toString();
      for (const re of [/^git version 2\./m, /^OpenSSL 3/m, /^curl 7\./m, /^\[1,2\]$/m, /^GNU Make/m, /Info-ZIP/, /^UnZip/m, /^xz \(XZ Utils\)/m, /^OpenSSH_/m, /^less /m, /^tini version/m, /^venv-ok$/m]) assert.match(out, re);
    });

    test("the CA bundle is there and curl can use it (a TLS handshake against a local server)", async () => {
      const r = await bash([
        "test -s /etc/ssl/certs/ca-certificates.crt",
        "grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt",
        "python3 -c 'import ssl; c = ssl.create_default_context(); print(len(c.get_ca_certs()) > 100 or c.cert_store_stats()[\"x509_ca\"])'",
        // no network in the sandbox: curl against a closed loopback port fails to connect (7), not for want of a CA bundle (77)
        "curl -sS https://127.0.0.1:9/ ; echo \"curl=$?\"",
      ].join(" && "));
      const out = r.stdout.toString();
      assert.ok(Number(out.split("\n")[0]) > 100, out);
      assert.match(out, /^(True|\d+)$/m);
      assert.match(out, /^curl=7$/m, `${out}\n${r.stderr}`);
    });

    test("/etc is coherent: hosts, resolv.conf (no nameserver), passwd, os-release", async () => {
      const r = await bash("getent hosts localhost | head -1; grep -c '^nameserver' /etc/resolv.conf; grep -c '^root:' /etc/passwd; . /etc/os-release && echo \"$ID $VERSION_ID\"; hostname");
      const [hosts, ns, root, os, host] = r.stdout.toString().trim().split("\n");
      assert.match(hosts, /^(127\.0\.0\.1|::1)\s+localhost/);
      assert.equal(ns, "0");
      assert.equal(root, "1");
      assert.equal(os, "debian 12");
      assert.equal(host, spec.name);
    });

    test("lohar's Node is under /opt/bhatti and not on PATH", async () => {
      const r = await bash("test -x /opt/bhatti/node && echo ok; command -v node || echo no-node");
      assert.equal(r.stdout.toString().trim(), "ok\nno-node");
    });
  });
}
