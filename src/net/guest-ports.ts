// netvm (issue 10): listening TCP ports of a vm sandbox. Its sockets live in
// the guest's kernel, not the host's, so the daemon asks the guest: it runs
// `cat /proc/net/tcp /proc/net/tcp6` through lohar (as the sandbox user; those
// files are readable by any user) and parses them like the ns engine's. The
// output is the sandbox's own word about its own ports, bounded in size and time.
import type { AgentClient } from "../engine/agent-client.js";
import { parseProcNetTcp, type ListeningPort } from "./ports.js";

const MAX_BYTES = 1 << 20; // /proc/net/tcp is 150 bytes a socket: ~7000 sockets
const TIMEOUT_MS = 10_000;

export async function guestListeningPorts(agent: AgentClient): Promise<ListeningPort[]> {
  const out: Record<4 | 6, Buffer[]> = { 4: [], 6: [] };
  let size = 0;
  const read = async (family: 4 | 6) => {
    const x = agent.exec({ cmd: ["cat", `/proc/net/${family === 4 ? "tcp" : "tcp6"}`], timeout_ms: TIMEOUT_MS });
    x.on("stdout", (b: Buffer) => {
      size += b.length;
      if (size > MAX_BYTES) x.cancel();
      else out[family].push(b);
    });
    x.on("stderr", () => {});
    const exit = await x.done;
    if (size > MAX_BYTES) throw new Error("the sandbox's socket table is too large to list");
    return exit;
  };
  await Promise.all([read(4), read(6)]);
  const all = [...parseProcNetTcp(Buffer.concat(out[4]).toString("utf8"), 4), ...parseProcNetTcp(Buffer.concat(out[6]).toString("utf8"), 6)];
  return all.sort((a, b) => a.port - b.port || a.family - b.family);
}
