// `bhatti ports SB` and `bhatti forward SB GUEST_PORT [LOCAL_PORT]`.
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer, type Socket } from "node:net";
import type { Command } from "commander";
import { clientOptions, run, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";

const PORTS_USAGE = "bhatti ports SB [--json]";
const FORWARD_USAGE = "bhatti forward SB GUEST_PORT [LOCAL_PORT]  (listens on 127.0.0.1; LOCAL_PORT defaults to GUEST_PORT, 0 picks one)";

interface Conn { url?: string; token?: string; json?: boolean }

export function registerPorts(cmd: Command): void {
  clientOptions(cmd.argument("<sandbox>", "sandbox name or id")).action(run((ref: string, o: Conn) => portsCommand(ref, o)));
}

export function registerForward(cmd: Command): void {
  clientOptions(cmd.argument("<sandbox>", "sandbox name or id").argument("<guest_port>", "port in the sandbox")
    .argument("[local_port]", "port on 127.0.0.1 here (default: the same; 0 picks one)"))
    .action(run((ref: string, g: string, l: string | undefined, o: Conn) => forwardCommand(ref, g, l, o)));
}

async function portsCommand(ref: string, values: Conn): Promise<number> {
  void PORTS_USAGE;
  const ports = await clientFrom(values).listPorts(ref);
  if (values.json) printJson(ports);
  else printTable(["PORT", "ADDRESS"], ports.map((p) => [String(p.port), p.address]));
  return 0;
}

function port(s: string | undefined, what: string, allowZero: boolean): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) throw new UsageError(`${what} must be a port number (1-65535)\nusage: ${FORWARD_USAGE}`);
  return n;
}

async function forwardCommand(ref: string, g: string, l: string | undefined, values: Conn): Promise<number> {
  const guest = port(g, "GUEST_PORT", false);
  const local = l === undefined ? guest : port(l, "LOCAL_PORT", true);
  const client = clientFrom(values);
  const url = new URL(`${client.url}/sandboxes/${encodeURIComponent(ref)}/forward/${guest}`);
  // Checked once up front, so a wrong name or a sandbox without network fails now, not at the first connection.
  await client.listPorts(ref);
  const server = createServer((local: Socket) => {
    local.on("error", () => local.destroy());
    local.pause();
    const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, { headers: { ...client.authHeader, Connection: "Upgrade", Upgrade: "bhatti-tcp" } });
    req.on("upgrade", (_res, remote, head) => {
      remote.on("error", () => local.destroy());
      local.on("close", () => remote.destroy());
      remote.on("close", () => local.destroy());
      if (head.length) local.write(head);
      local.pipe(remote);
      remote.pipe(local);
      local.resume();
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d: Buffer) => { if (body.length < 4096) body += d; });
      res.on("end", () => {
        let msg = `HTTP ${res.statusCode}`;
        try { msg = JSON.parse(body).error ?? msg; } catch { /* not JSON */ }
        process.stderr.write(`bhatti: forward: ${msg}\n`);
        local.destroy();
      });
    });
    req.on("error", (e) => { process.stderr.write(`bhatti: forward: cannot reach the daemon (${(e as NodeJS.ErrnoException).code ?? e.message})\n`); local.destroy(); });
    req.end();
  });
  await new Promise<void>((resolve, reject) => { server.once("error", reject); server.listen(local, "127.0.0.1", () => resolve()); });
  const bound = (server.address() as { port: number }).port;
  process.stdout.write(`forwarding 127.0.0.1:${bound} -> ${ref}:${guest} (Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => { process.once("SIGINT", resolve); process.once("SIGTERM", resolve); });
  server.close();
  return 0;
}
