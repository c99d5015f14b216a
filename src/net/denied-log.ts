// Events for connections nft drops that never reach the proxy (TCP to ports
// other than 80/443, UDP other than DNS to the gateway): the drop rules of
// this instance's table also `log` the packet to an NFLOG group (the
// kernel's netfilter-log netlink family), at most a few per second per
// sandbox and a few hundred in all (nft `limit rate`, in the kernel). A small
// helper, Python's standard library on a netlink socket, binds that group and
// prints one JSON line per packet: the rule (from the log prefix, which names
// this instance), protocol, addresses and destination port, never a byte of
// payload (the kernel copies only the first SNAPLEN bytes: the IPv4 and L4
// headers). Only packets our own rules logged reach our group, so nothing of
// other processes is read. The helper is tied to the daemon (it dies with
// it); it is read through a pipe (no thread pool thread waits on it), a line
// over MAX_LINE is dropped, a pipe the daemon does not drain stops the
// helper, and the kernel then drops what does not fit its socket buffer.
// If it exits it is started again (at most once every RESTART_MS).
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { tiedToParent, TOOL_ENV } from "../util/run.js";

export const SNAPLEN = 48; // IPv4 header (20, up to 60 with options) + the ports; never payload
export const PYTHON = "/usr/bin/python3";
const MAX_LINE = 512;
const RESTART_MS = 2000;
const START_TIMEOUT_MS = 5000;
const GROUP_TRIES = 16;

export interface DroppedPacket { rule: string; proto: string; src: string; dst: string; port?: number; lost?: number }

/** The NFLOG reader, run as `python3 -I -S -c SCRIPT GROUP SNAPLEN TAG`. */
export const NFLOG_READER = String.raw`import errno, json, os, socket, struct, sys
group, snap, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode() + b":"
MSG_CONFIG, MSG_PACKET = (4 << 8) | 1, (4 << 8) | 0
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((0, 0))
def attr(t, p):
    n = 4 + len(p)
    return struct.pack("=HH", n, t) + p + b"\0" * (-n % 4)
def config(seq, *attrs):
    body = struct.pack("=BBH", 0, 0, socket.htons(group)) + b"".join(attrs)
    s.send(struct.pack("=IHHII", 16 + len(body), MSG_CONFIG, 1 | 4, seq, 0) + body)
    while True:
        d = s.recv(65536)
        n, t, _, sq, _ = struct.unpack_from("=IHHII", d, 0)
        if t == 2 and sq == seq:
            return -struct.unpack_from("=i", d, 16)[0]
err = config(1, attr(1, b"\x01"))
if err:
    print(json.dumps({"error": errno.errorcode.get(err, str(err))}), flush=True); sys.exit(3)
err = config(2, attr(2, struct.pack(">IBB", snap, 2, 0)), attr(6, struct.pack(">I", 1)), attr(4, struct.pack(">I", 10)))
if err:
    print(json.dumps({"error": errno.errorcode.get(err, str(err))}), flush=True); sys.exit(3)
print(json.dumps({"ready": group}), flush=True)
lost = 0
while True:
    try:
        d = s.recv(1 << 16)
    except OSError as e:
        if e.errno == errno.ENOBUFS:
            lost += 1; continue
        raise
    off = 0
    while off + 16 <= len(d):
        n, t = struct.unpack_from("=IH", d, off)
        if n < 16: break
        if t == MSG_PACKET:
            a, end, prefix, pkt = off + 20, off + n, b"", b""
            while a + 4 <= end:
                al, at = struct.unpack_from("=HH", d, a)
                if al < 4: break
                at &= 0x3fff
                if at == 10: prefix = d[a + 4:a + al].split(b"\0")[0]
                elif at == 9: pkt = d[a + 4:a + al]
                a += (al + 3) & ~3
            if prefix.startswith(tag) and len(pkt) >= 20 and pkt[0] >> 4 == 4:
                ihl, proto = (pkt[0] & 15) * 4, pkt[9]
                ev = {"rule": prefix[len(tag):].decode("ascii", "replace")[:32], "proto": {6: "tcp", 17: "udp"}.get(proto, str(proto)),
                      "src": socket.inet_ntoa(pkt[12:16]), "dst": socket.inet_ntoa(pkt[16:20])}
                if proto in (6, 17) and len(pkt) >= ihl + 4: ev["port"] = struct.unpack_from(">H", pkt, ihl + 2)[0]
                if lost: ev["lost"], lost = lost, 0
                print(json.dumps(ev), flush=True)
        off += (n + 3) & ~3
`;

/** The log prefix of this instance's rules: `<tag>:<rule>`. */
export const logTag = (instance: string) => `bh${instance.slice(0, 12)}`;

export class DeniedLog {
  private child?: ChildProcess;
  private group?: number;
  private closed = false;
  private lastStart = 0;

  constructor(private readonly instance: string, private readonly onPacket: (p: DroppedPacket) => void, private readonly log: (line: string) => void) {}

  /** Binds an NFLOG group of its own (trying a few, another process may hold one); undefined when the host cannot (no python3). */
  async start(): Promise<number | undefined> {
    if (!existsSync(PYTHON)) {
      this.log(`network: events for dropped non-HTTP(S) connections are off: ${PYTHON} is missing (apt install python3-minimal)`);
      return undefined;
    }
    const base = 10_000 + (createHash("sha256").update(this.instance).digest().readUInt16BE(0) % 50_000);
    for (let i = 0; i < GROUP_TRIES; i++) {
      const g = base + i;
      const r = await this.spawn(g);
      if (r === "ready") { this.group = g; return g; }
      if (r !== "busy") { this.log(`network: events for dropped non-HTTP(S) connections are off: ${r}`); return undefined; }
    }
    this.log(`network: events for dropped non-HTTP(S) connections are off: NFLOG groups ${base}-${base + GROUP_TRIES - 1} are all taken`);
    return undefined;
  }

  private spawn(group: number): Promise<"ready" | "busy" | string> {
    this.lastStart = Date.now();
    const [file, argv] = tiedToParent(PYTHON, ["-I", "-S", "-c", NFLOG_READER, String(group), String(SNAPLEN), logTag(this.instance)]);
    const child = spawn(file, argv, { env: TOOL_ENV, stdio: ["ignore", "pipe", "pipe"] });
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: string) => { if (!settled) { settled = true; clearTimeout(timer); resolve(r); } };
      const timer = setTimeout(() => { child.kill("SIGKILL"); done("the NFLOG reader did not start in time"); }, START_TIMEOUT_MS);
      child.on("error", (e) => done(`the NFLOG reader failed to start: ${e.message}`));
      let err = "";
      child.stderr!.on("data", (b: Buffer) => { if (err.length < 2048) err += b.toString("utf8"); });
      let buf = "";
      child.stdout!.setEncoding("utf8");
      child.stdout!.on("data", (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.line(line, done);
        }
        if (buf.length > MAX_LINE) buf = ""; // never a line of ours: dropped, not kept
      });
      child.once("exit", (code, signal) => {
        if (this.child === child) this.child = undefined;
        if (!settled) {
          const msg = err.trim().split("\n").slice(-1)[0] ?? "";
          return done(/EPERM|EBUSY/.test(buf + msg) ? "busy" : `the NFLOG reader exited (${signal ?? code})${msg ? `: ${msg.slice(0, 200)}` : ""}`);
        }
        if (this.closed) return;
        this.log(`network: the NFLOG reader exited (${signal ?? code}); starting it again`);
        const wait = Math.max(0, RESTART_MS - (Date.now() - this.lastStart));
        setTimeout(() => { if (!this.closed && !this.child && this.group !== undefined) void this.spawn(this.group); }, wait).unref();
      });
      this.child = child;
    });
  }

  private line(line: string, done: (r: string) => void): void {
    if (line.length > MAX_LINE) return;
    let v: Record<string, unknown>;
    try { v = JSON.parse(line) as Record<string, unknown>; } catch { return; }
    if (typeof v.ready === "number") return done("ready");
    if (typeof v.error === "string") return done(v.error === "EPERM" || v.error === "EBUSY" ? "busy" : `binding an NFLOG group: ${v.error}`);
    if (typeof v.rule !== "string" || typeof v.src !== "string" || typeof v.dst !== "string" || typeof v.proto !== "string") return;
    this.onPacket({ rule: v.rule, proto: v.proto, src: v.src, dst: v.dst, ...(typeof v.port === "number" ? { port: v.port } : {}), ...(typeof v.lost === "number" ? { lost: v.lost } : {}) });
  }

  close(): void {
    this.closed = true;
    this.child?.kill("SIGKILL");
    this.child = undefined;
  }
}
