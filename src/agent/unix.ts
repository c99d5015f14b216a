// ns engine transport: a unix socket, one session per connection.
import type { Server } from "node:net";
import { mkdirSync, rmSync, chmodSync } from "node:fs";
import { dirname } from "node:path";
import type { Sandbox } from "./boot.js";
import { Session } from "./session.js";
import { log } from "./log.js";

/**
 * Listens at path. `ready` is the boot: the socket may exist before it is
 * done, but a connection is read (and so authenticated, and told hello) only
 * once it is; a failed boot answers nothing (lohar then exits).
 */
export function serveUnix(path: string, ready: Promise<{ sandbox: Sandbox; bootMs: number }>): Promise<Server> {
  // node:net is loaded only here: the vm engine never needs it, and every
  // module costs boot time (~0.1 s under QEMU TCG).
  const { createServer } = process.getBuiltinModule("node:net");
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  rmSync(path, { force: true }); // a stale socket from an earlier lohar
  const server = createServer({ allowHalfOpen: false }, (sock) => {
    sock.on("error", () => {}); // 'close' follows
    // Until a 'data' listener is attached the socket is paused: what the host sent waits in the kernel.
    ready.then(({ sandbox, bootMs }) => {
      if (sock.destroyed) return;
      const session = new Session(sock, sandbox, bootMs);
      sock.on("data", (d: Buffer) => session.push(d));
      sock.on("close", () => session.detach());
    }, () => sock.destroy());
  });
  return new Promise((resolve, reject) => {
    const old = process.umask(0o177); // the socket is born 0600
    server.once("error", reject);
    server.listen(path, () => {
      process.umask(old);
      chmodSync(path, 0o600);
      server.off("error", reject);
      server.on("error", (e) => log(`socket error: ${(e as NodeJS.ErrnoException).code ?? "unknown"}`));
      resolve(server);
    });
  });
}
