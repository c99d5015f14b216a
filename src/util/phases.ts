// Per-sandbox phase timings of a create, for finding where its time goes.
// Off unless the daemon runs with BHATTI_TRACE_CREATE=1; then the create's
// log line ends with each phase's name and duration in ms. Only fixed step
// names and numbers are kept: never an argument, a path from a request or a
// value. Bounded: at most MAX_OPEN creates in flight are tracked (the oldest
// is dropped) and MAX_STEPS steps per create.

export const TRACE_ENV = "BHATTI_TRACE_CREATE";
const MAX_OPEN = 256;
const MAX_STEPS = 64;

let enabled = process.env[TRACE_ENV] === "1";
const open = new Map<string, [string, number][]>();

/** Whether phases are being recorded (tests and benchmarks may switch it on in process). */
export function tracingPhases(): boolean {
  return enabled;
}

export function setTracingPhases(on: boolean): void {
  enabled = on;
  if (!on) open.clear();
}

/** Records one step of sandbox `id`'s create. */
export function phase(id: string, step: string, ms: number): void {
  if (!enabled || !id) return;
  let steps = open.get(id);
  if (!steps) {
    if (open.size >= MAX_OPEN) open.delete(open.keys().next().value as string);
    steps = [];
    open.set(id, steps);
  }
  if (steps.length < MAX_STEPS) steps.push([step, ms]);
}

/** Runs f and records its duration as step `step` of sandbox `id` (when tracing). */
export async function timedPhase<T>(id: string, step: string, f: () => Promise<T> | T): Promise<T> {
  if (!enabled || !id) return f();
  const t = performance.now();
  try {
    return await f();
  } finally {
    phase(id, step, performance.now() - t);
  }
}

/** The recorded steps of `id` as "step 1.2, other 3.4" (empty when none), forgetting them. */
export function takePhases(id: string): string {
  const steps = open.get(id);
  open.delete(id);
  return steps ? steps.map(([s, ms]) => `${s} ${ms.toFixed(1)}`).join(", ") : "";
}
