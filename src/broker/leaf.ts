// Leaf certificates for intercepted names, minted from a sandbox's own CA
// (ECDSA P-256 leaf, signed with whatever key the CA has: ECDSA or RSA).
// One leaf key per sandbox; one certificate per sandbox and name, cached as a
// ready TLS context until shortly before it expires. The CA key is only
// imported here, into WebCrypto, to sign: it is never written anywhere.
import "reflect-metadata";
import { webcrypto, randomBytes } from "node:crypto";
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;
type EcKeyImportParams = webcrypto.EcKeyImportParams;
import { createSecureContext, type SecureContext } from "node:tls";
import * as x509 from "@peculiar/x509";
import type { SandboxBroker, SandboxCa } from "./types.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const LEAF_DAYS = 7;
const RENEW_BEFORE_MS = 24 * 3600_000;
const MAX_CONTEXTS = 4096; // sandbox × name pairs held at once (oldest dropped first)
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;

interface Signer { key: CryptoKey; alg: Algorithm | EcdsaParams | RsaHashedImportParams; issuer: x509.X509Certificate; caPem: string }
interface Keys { leaf: CryptoKeyPair; leafPem: string; signer: Signer }
interface Entry { ctx: SecureContext; renewAt: number }

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function derOf(p: string): Buffer {
  return Buffer.from(p.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
}

/** Imports the CA's key for signing, by the algorithm its certificate names. */
async function signerOf(ca: SandboxCa): Promise<Signer> {
  const issuer = new x509.X509Certificate(ca.certPem);
  const a = issuer.publicKey.algorithm as { name: string; namedCurve?: string };
  let imp: EcKeyImportParams | RsaHashedImportParams;
  let alg: EcdsaParams | Algorithm;
  if (a.name === "ECDSA") {
    imp = { name: "ECDSA", namedCurve: a.namedCurve ?? "P-256" };
    alg = { name: "ECDSA", hash: a.namedCurve === "P-384" ? "SHA-384" : a.namedCurve === "P-521" ? "SHA-512" : "SHA-256" } as EcdsaParams;
  } else if (a.name === "RSASSA-PKCS1-v1_5") {
    imp = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    alg = imp;
  } else {
    throw new Error(`sandbox CA: unsupported key algorithm ${a.name}`);
  }
  const key = await webcrypto.subtle.importKey("pkcs8", derOf(ca.keyPem), imp, false, ["sign"]);
  return { key: key as CryptoKey, alg, issuer, caPem: ca.certPem };
}

/** Mints one leaf certificate for `name`, valid LEAF_DAYS, signed by the CA. Exported for tests and the benchmark. */
export async function mintLeaf(name: string, leafKey: CryptoKeyPair, signer: Signer): Promise<x509.X509Certificate> {
  const now = Date.now();
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // positive
  return x509.X509CertificateGenerator.create({
    serialNumber: serial.toString("hex"),
    subject: `CN=${name}`,
    issuer: signer.issuer.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + LEAF_DAYS * 86400_000),
    signingAlgorithm: signer.alg,
    publicKey: leafKey.publicKey,
    signingKey: signer.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: name }]),
      await x509.AuthorityKeyIdentifierExtension.create(signer.issuer),
      await x509.SubjectKeyIdentifierExtension.create(leafKey.publicKey),
    ],
  });
}

export async function signerFor(ca: SandboxCa): Promise<Signer> {
  return signerOf(ca);
}

export async function newLeafKey(): Promise<{ pair: CryptoKeyPair; pem: string }> {
  const pair = (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
  return { pair, pem: pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", pair.privateKey)) };
}

/** TLS contexts for intercepted names, per sandbox. */
export class LeafCache {
  private readonly keys = new Map<string, Promise<Keys>>();
  private readonly ctxs = new Map<string, Promise<Entry>>();

  /** The TLS server context presenting a leaf for `name` from this sandbox's CA. */
  async context(b: SandboxBroker, name: string): Promise<SecureContext> {
    const k = `${b.sandboxId}\0${name}`;
    let p = this.ctxs.get(k);
    if (p) {
      const e = await p.catch(() => undefined);
      if (e && Date.now() < e.renewAt) {
        this.ctxs.delete(k); // move to the back: recently used
        this.ctxs.set(k, p);
        return e.ctx;
      }
      if (this.ctxs.get(k) === p) this.ctxs.delete(k);
    }
    p = this.mint(b, name);
    this.ctxs.set(k, p);
    p.catch(() => { if (this.ctxs.get(k) === p) this.ctxs.delete(k); });
    while (this.ctxs.size > MAX_CONTEXTS) this.ctxs.delete(this.ctxs.keys().next().value!);
    return (await p).ctx;
  }

  /** Forgets a sandbox (gone, or its CA changed). */
  drop(sandboxId: string): void {
    this.keys.delete(sandboxId);
    for (const k of [...this.ctxs.keys()]) if (k.startsWith(`${sandboxId}\0`)) this.ctxs.delete(k);
  }

  private keysOf(b: SandboxBroker): Promise<Keys> {
    let p = this.keys.get(b.sandboxId);
    if (!p) {
      p = (async () => {
        const [leaf, signer] = await Promise.all([newLeafKey(), b.ca().then(signerOf)]);
        return { leaf: leaf.pair, leafPem: leaf.pem, signer };
      })();
      this.keys.set(b.sandboxId, p);
      p.catch(() => { if (this.keys.get(b.sandboxId) === p) this.keys.delete(b.sandboxId); });
      while (this.keys.size > MAX_CONTEXTS) this.keys.delete(this.keys.keys().next().value!);
    }
    return p;
  }

  private async mint(b: SandboxBroker, name: string): Promise<Entry> {
    const k = await this.keysOf(b);
    const cert = await mintLeaf(name, k.leaf, k.signer);
    const ctx = createSecureContext({ key: k.leafPem, cert: cert.toString("pem"), minVersion: "TLSv1.2" });
    return { ctx, renewAt: cert.notAfter.getTime() - RENEW_BEFORE_MS };
  }
}
