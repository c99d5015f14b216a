// A minimal QMP (QEMU Machine Protocol) client: one connection per call to the
// sandbox QEMU's control socket (<sb>/qmp.sock), capabilities negotiation, one
// command, its answer. Used for pause (`stop`), resume (`cont`) and
// `query-status`. Lines from QEMU are bounded: a reply longer than 1 MiB or
// slower than the timeout is an error.
import { connect } from "node:net";

const MAX_LINE = 1 << 20;

export interface QmpReply { return?: unknown; error?: { class: string; desc: string } }

/** Runs one QMP command; resolves with its `return` value, rejects with QEMU's error or on timeout. */
export function qmp(socket: string, command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = "";
    let stage: "greeting" | "caps" | "command" = "greeting";
    const done = (err: Error | null, value?: unknown) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => done(new Error(`QMP ${command}: no answer within ${timeoutMs} ms`)), timeoutMs);
    s.setEncoding("utf8");
    s.on("error", (e) => done(new Error(`QMP ${command}: ${e.message}`)));
    s.on("close", () => done(new Error(`QMP ${command}: QEMU closed the control socket`)));
    s.on("data", (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) return done(new Error(`QMP ${command}: reply too long`));
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: QmpReply & { QMP?: unknown; event?: unknown };
        try {
          msg = JSON.parse(line);
        } catch {
          return done(new Error(`QMP ${command}: unparsable reply`));
        }
        if (msg.event) continue; // asynchronous events (STOP, RESUME, ...)
        if (stage === "greeting") {
          if (!msg.QMP) return done(new Error(`QMP ${command}: no greeting`));
          stage = "caps";
          s.write(JSON.stringify({ execute: "qmp_capabilities" }) + "\n");
        } else if (stage === "caps") {
          if (msg.error) return done(new Error(`QMP qmp_capabilities: ${msg.error.desc}`));
          stage = "command";
          s.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + "\n");
        } else {
          if (msg.error) return done(new Error(`QMP ${command}: ${msg.error.desc}`));
          return done(null, msg.return);
        }
      }
    });
  });
}
