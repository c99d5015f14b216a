// Run synchronous filesystem calls with the sandbox user's permissions.
// lohar is root (of the sandbox); file requests must see exactly what uid 1000
// sees. We switch the effective ids (and the supplementary groups, else root's
// groups would still grant access) around a synchronous function and always
// switch back. Only synchronous, path-based calls belong inside: the switch is
// process-wide, and nothing else runs on the JS thread meanwhile.
import { GUEST } from "../protocol/agent.js";

const { uid, gid } = GUEST.user;

export function asUser<T>(fn: () => T): T {
  if (process.geteuid?.() !== 0) return fn(); // not root (never in a sandbox): nothing to drop
  const groups = process.getgroups!();
  try {
    process.setgroups!([gid]);
  } catch (e) {
    // A user namespace with setgroups denied: tolerable only if we hold no other group.
    if (groups.some((g) => g !== gid)) throw e;
  }
  process.setegid!(gid);
  process.seteuid!(uid);
  try {
    return fn();
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
    try { process.setgroups!(groups); } catch { /* denied: never changed */ }
  }
}
