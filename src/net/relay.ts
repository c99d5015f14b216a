// One HTTP response relayed from an upstream request to the client, for the
// egress proxy and the preview proxy alike: status and raw headers as they
// came, the body piped (so a slow client slows the upstream), and either side
// going away ends the other.
import type { ClientRequest, ServerResponse } from "node:http";

export function relayResponse(up: ClientRequest, res: ServerResponse): void {
  up.on("timeout", () => up.destroy(new Error("timeout")));
  up.on("response", (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders);
    ur.pipe(res);
    ur.on("error", () => res.destroy());
  });
  res.on("close", () => { if (!res.writableFinished) up.destroy(); });
}
