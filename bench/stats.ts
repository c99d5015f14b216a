import { cpus, loadavg } from "node:os";

// Small helpers shared by the benchmarks: timing, percentiles, tables.
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface Row { name: string; samples: number[]; ref?: string; target?: string }

export async function timeit(n: number, fn: (i: number) => Promise<unknown> | unknown, warmup = Math.min(20, Math.ceil(n / 10))): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

/** Prints a markdown table: p50, p95, and the ratio of p50 to the named reference row. */
export function printTable(title: string, rows: Row[]): void {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const lines = [`### ${title}`, "", "| measurement | n | p50 ms | p95 ms | ratio to reference (p50) | target |", "|---|---:|---:|---:|---|---|"];
  for (const r of rows) {
    const p50 = percentile(r.samples, 50);
    const ref = r.ref ? byName.get(r.ref) : undefined;
    const ratio = ref ? `${(p50 / percentile(ref.samples, 50)).toFixed(1)}× ${r.ref}` : "(reference)";
    lines.push(`| ${r.name} | ${r.samples.length} | ${fmt(p50)} | ${fmt(percentile(r.samples, 95))} | ${r.ref ? ratio : "—"} | ${r.target ?? ""} |`);
  }
  process.stdout.write(lines.join("\n") + "\n\n");
}

export function machine(): string {
  return `${cpus()[0]?.model ?? "cpu"}, ${cpus().length} cores, ${process.platform} ${process.arch}, node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`;
}
