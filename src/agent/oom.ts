// The OOM killer of a full sandbox must take a command, not lohar: tmpfs pages
// (/tmp, /run, /dev/shm) count against the sandbox's memory but belong to no
// process, and lohar (node) is often the largest process, so it used to be
// the victim and the sandbox lost its agent while its status said running.
//
// Every command starts with oom_score_adj 1000 (commands always go first):
// lohar raises its own score around the (synchronous) spawn, so the child
// inherits it, and lowers it again right after. Raising needs no privilege and
// lowering back to the starting value is allowed too (the kernel's
// oom_score_adj_min), which is why this works in both engines without any
// host capability; writing a child's /proc entry would not (hidepid, and the
// child is another uid). A command may lower its own score back to lohar's
// (never below): then it can only harm its own sandbox.
import { readFileSync, writeFileSync } from "node:fs";
import { log } from "./log.js";

export const COMMAND_OOM_SCORE_ADJ = 1000;
const SELF = "/proc/self/oom_score_adj";

let own: string | null | undefined;

function set(v: string): boolean {
  try {
    writeFileSync(SELF, v);
    return true;
  } catch {
    return false;
  }
}

/** Runs `start` (a synchronous spawn) so that the process it creates has oom_score_adj 1000. */
export function asCommand<T>(start: () => T): T {
  if (own === undefined) {
    try {
      own = readFileSync(SELF, "utf8").trim();
    } catch {
      own = null; // no /proc: nothing to do
    }
  }
  if (own === null || !set(String(COMMAND_OOM_SCORE_ADJ))) return start();
  try {
    return start();
  } finally {
    if (!set(own)) log("oom_score_adj not restored after a spawn: lohar is now an OOM candidate like a command");
  }
}
