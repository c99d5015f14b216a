// netvm (issue 10): which sandboxes hold their network across a daemon restart.
// Running ones, and paused ones (their processes, netns or QEMU, live on). A vm
// sandbox also keeps its tap and lease while stopped: its memory snapshot holds
// eth0 configured with that address, and the restore attaches the same tap.
export function keepsNetwork(r: { status: string; engine: string }): boolean {
  if (r.status === "running" || r.status === "unreachable" || r.status === "paused") return true;
  return r.engine === "vm" && (r.status === "stopped" || r.status === "stopping" || r.status === "starting");
}
