// Host-side limits applied to a running ns sandbox before it is handed out:
// its user namespace's own caps (inotify, fanotify, nested namespaces; see
// limits.ts USERNS_LIMITS). They can only be set from inside that namespace by
// a process holding CAP_SYS_RESOURCE there, which lohar does not have, so the
// daemon enters it (nsenter --user, root in the sandbox) to write them; the
// sandbox cannot raise them again.
import { run } from "../runtime.js";
import { USERNS_LIMITS } from "./limits.js";

/** Sets the sandbox user namespace's /proc/sys/user limits; `pid` is any process of the sandbox. */
export async function guardSandbox(pid: number): Promise<void> {
  // Numbers and fixed names only: nothing here comes from a request.
  const script = Object.entries(USERNS_LIMITS)
    .map(([k, v]) => `if [ -e /proc/sys/user/${k} ]; then echo ${Math.trunc(v)} > /proc/sys/user/${k} || exit 1; fi`)
    .join("\n");
  await run("nsenter", ["--user", "--target", String(pid), "--", "/bin/sh", "-c", script]);
}
