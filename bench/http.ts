// The benches' HTTP client: one JSON request to the daemon over a keep-alive
// agent (node:http directly, so the client's own overhead stays out of the numbers).
import http from "node:http";

export interface Api { url: string; key: string }

export function request(agent: http.Agent, a: Api, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  const u = new URL(path, a.url);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, agent,
      headers: { Authorization: `Bearer ${a.key}`, ...(data ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(data);
  });
}
