// The one module that loads @peculiar/x509 (and the reflect-metadata polyfill
// it needs) on the store side: a self-signed CA certificate for a sandbox,
// ECDSA P-256 through Node's WebCrypto. Nothing here touches the disk.
import "reflect-metadata";
import { randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: "ECDSA", namedCurve: "P-256" } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** A CA that may sign server certificates only (pathLen 0), valid from an hour ago for `days`. */
export async function selfSignedCa(commonName: string, days: number): Promise<{ certPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const notBefore = new Date(Date.now() - 3600_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // A positive 128-bit serial (top bit clear): unique per CA, as RFC 5280 asks.
    serialNumber: "01" + randomBytes(15).toString("hex"),
    name: `CN=${commonName}, O=bhatti`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * 86_400_000),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]["keys"],
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as Parameters<typeof x509.SubjectKeyIdentifierExtension.create>[0]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { certPem: cert.toString("pem") + "\n", keyPem: pem("PRIVATE KEY", pkcs8) };
}

function der(p: string): Buffer {
  return Buffer.from(p.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
}

/** A server certificate for `hosts` signed by an ECDSA P-256 CA made by selfSignedCa (the tests' TLS servers; the egress proxy mints its own). */
export async function serverCert(ca: { certPem: string; keyPem: string }, hosts: string[], days = 1): Promise<{ certPem: string; keyPem: string }> {
  const issuer = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey("pkcs8", der(ca.keyPem), EC, false, ["sign"]);
  const keys = await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const notBefore = new Date(Date.now() - 3600_000);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "01" + randomBytes(15).toString("hex"),
    subject: `CN=${hosts[0]}`,
    issuer: issuer.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * 86_400_000),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    publicKey: keys.publicKey as unknown as x509.X509CertificateCreateWithKeyParams["publicKey"],
    signingKey: caKey as unknown as x509.X509CertificateCreateWithKeyParams["signingKey"],
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(hosts.map((h) => ({ type: "dns" as const, value: h }))),
      await x509.AuthorityKeyIdentifierExtension.create(issuer),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { certPem: cert.toString("pem") + "\n", keyPem: pem("PRIVATE KEY", pkcs8) };
}
