// One HTTP response relayed from an upstream request to the client, for the
// egress proxy and the preview proxy alike: status and raw headers as they
// came, the body piped (so a slow client slows the upstream), and either side
// going away ends the other.
import type { ClientRequest, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

export function relayResponse(up: ClientRequest, res: ServerResponse): void {
  up.on("timeout", () => up.destroy(new Error("timeout")));
  up.on("response", (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders);
    ur.pipe(res);
    ur.on("error", () => res.destroy());
  });
  res.on("close", () => { if (!res.writableFinished) up.destroy(); });
}

/** Pipes two streams both ways (a slow side slows the other through pipe's backpressure); either side's error or close ends both. */
export function splice(a: Duplex, b: Duplex): void {
  const end = () => { a.destroy(); b.destroy(); };
  a.on("error", end);
  b.on("error", end);
  a.on("close", end);
  b.on("close", end);
  a.pipe(b);
  b.pipe(a);
}
