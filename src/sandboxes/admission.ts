// Host-wide admission: a create is refused before anything starts when the
// sandboxes this daemon runs (all users) would exceed the host's capacity:
// - count: at most maxSandboxes (see src/engine/ns/limits.ts planCapacity);
// - memory: sum of memory_mb <= overcommitMemory x host RAM (default 0.9:
//   sandbox memory is a hard cgroup limit whose pages, tmpfs included, cannot
//   be reclaimed without swap, so overcommitting it means a host OOM later;
//   a tenth stays for the host, the daemon and the page cache);
// - cpus: sum of cpus <= overcommitCpus x host CPUs (default 4: a cpu limit is
//   a ceiling, not a reservation, so oversubscription only slows sandboxes).
// Sandboxes in any state but `dead`, `lost` and `stopped` (holds no memory or cpu) count. The check runs inside the same
// immediate transaction as the per-user quota check and the INSERT, so two
// concurrent creates cannot both pass it. It counts this daemon's sandboxes
// only: two daemons on one host each admit up to the whole host.
import { availableParallelism, totalmem } from "node:os";
import type { DB } from "../store/db.js";
import { UserError } from "../util/errors.js";

export interface AdmissionOptions {
  maxSandboxes: number;
  overcommitMemory: number;
  overcommitCpus: number;
  hostMemoryMb?: number; // default: os.totalmem()
  hostCpus?: number; // default: os.availableParallelism()
}

export const DEFAULT_OVERCOMMIT_MEMORY = 0.9;
export const DEFAULT_OVERCOMMIT_CPUS = 4;
const RETRY_AFTER_S = "30";

export class Admission {
  readonly memoryMb: number;
  readonly cpus: number;

  constructor(readonly opts: AdmissionOptions) {
    this.memoryMb = Math.floor((opts.hostMemoryMb ?? Math.floor(totalmem() / (1024 * 1024))) * opts.overcommitMemory);
    this.cpus = (opts.hostCpus ?? availableParallelism()) * opts.overcommitCpus;
  }

  describe(): string {
    return `admission: at most ${this.opts.maxSandboxes} sandboxes, ${this.memoryMb} MiB of memory (${this.opts.overcommitMemory} x RAM), ${this.cpus} cpus (${this.opts.overcommitCpus} x CPUs)`;
  }

  /**
   * Throws a 503 (Retry-After) naming the rule when one more sandbox of this
   * size does not fit. Call inside the create's immediate transaction.
   * Other users' usage is not disclosed: only the rule and the request.
   */
  check(db: DB, cpus: number, memoryMb: number): void {
    const used = db.prepare("SELECT COUNT(*) AS n, COALESCE(SUM(cpus), 0) AS c, COALESCE(SUM(memory_mb), 0) AS m FROM sandboxes WHERE status NOT IN ('dead', 'lost', 'stopped')").get() as { n: number; c: number; m: number };
    const full = (rule: string) => new UserError(503, `host capacity reached: ${rule}; try again later`, { "Retry-After": RETRY_AFTER_S });
    if (used.n + 1 > this.opts.maxSandboxes) throw full(`at most ${this.opts.maxSandboxes} sandboxes run on this host (serve --max-sandboxes)`);
    if (memoryMb > this.memoryMb) throw new UserError(409, `memory_mb ${memoryMb} is more than this host admits for all sandboxes together (${this.memoryMb} MiB)`, {}, "too_large_for_host");
    if (cpus > this.cpus) throw new UserError(409, `cpus ${cpus} is more than this host admits for all sandboxes together (${this.cpus})`, {}, "too_large_for_host");
    if (used.m + memoryMb > this.memoryMb) throw full(`the memory of running sandboxes may not exceed ${this.memoryMb} MiB (serve --overcommit-memory); ${memoryMb} MiB requested`);
    if (used.c + cpus > this.cpus) throw full(`the cpus of running sandboxes may not exceed ${this.cpus} (serve --overcommit-cpus); ${cpus} requested`);
  }
}
