// Reads the server name (SNI) from the first bytes of a TLS connection, the
// ClientHello, without terminating TLS. Bounded: a ClientHello larger than
// MAX_HELLO, or bytes that are not one, is an error, never more buffering.

export const MAX_HELLO = 16 * 1024;

export type HelloResult = { state: "need-more" } | { state: "done"; sni: string | null } | { state: "invalid"; why: string; name?: string };

/** Parses buf as the start of a TLS stream: done (with the SNI or null), need more bytes, or not TLS. */
export function parseClientHello(buf: Buffer): HelloResult {
  if (buf.length < 5) return { state: "need-more" };
  if (buf[0] !== 0x16) return { state: "invalid", why: "not a TLS handshake" };
  if (buf[1] !== 3) return { state: "invalid", why: "unknown TLS version" };
  const recLen = buf.readUInt16BE(3);
  if (recLen > MAX_HELLO) return { state: "invalid", why: "ClientHello too large" };
  // The hello may span records; all that matters is it fits in the first one in practice (servers accept any split).
  if (buf.length < 5 + recLen) return buf.length > MAX_HELLO + 5 ? { state: "invalid", why: "ClientHello too large" } : { state: "need-more" };
  const h = buf.subarray(5, 5 + recLen);
  try {
    if (h[0] !== 1) return { state: "invalid", why: "not a ClientHello" };
    const bodyLen = h.readUIntBE(1, 3);
    if (bodyLen + 4 > h.length) return { state: "invalid", why: "ClientHello split over records" };
    let p = 4 + 2 + 32; // header, client_version, random
    p += 1 + h[p]; // session_id
    p += 2 + h.readUInt16BE(p); // cipher_suites
    p += 1 + h[p]; // compression_methods
    if (p >= 4 + bodyLen) return { state: "done", sni: null }; // no extensions
    const extEnd = p + 2 + h.readUInt16BE(p);
    p += 2;
    if (extEnd > 4 + bodyLen) return { state: "invalid", why: "malformed extensions" };
    while (p + 4 <= extEnd) {
      const type = h.readUInt16BE(p);
      const len = h.readUInt16BE(p + 2);
      p += 4;
      if (p + len > extEnd) return { state: "invalid", why: "malformed extension" };
      if (type === 0) {
        // server_name: list length, then entries (type 0 = host_name, length, name)
        let q = p + 2;
        const end = p + 2 + h.readUInt16BE(p);
        if (end > p + len) return { state: "invalid", why: "malformed server_name" };
        while (q + 3 <= end) {
          const kind = h[q];
          const n = h.readUInt16BE(q + 1);
          q += 3;
          if (q + n > end) return { state: "invalid", why: "malformed server_name" };
          if (kind === 0) {
            const name = h.subarray(q, q + n).toString("latin1");
            // The name is kept (at most 64 KiB by the record's bound) so the broker can still look for a placeholder in it.
            if (!/^[A-Za-z0-9.-]{1,253}$/.test(name)) return { state: "invalid", why: "bad server name", name };
            return { state: "done", sni: name.toLowerCase() };
          }
          q += n;
        }
        return { state: "done", sni: null };
      }
      p += len;
    }
    return { state: "done", sni: null };
  } catch {
    return { state: "invalid", why: "truncated ClientHello" };
  }
}
