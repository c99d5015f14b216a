// Progress for long operations: a spinner line with elapsed seconds on stderr,
// only when stderr is a terminal. Nothing at all is written otherwise, so
// scripts and pipes see exactly the result.
export async function withProgress<T>(label: string, fn: () => Promise<T>): Promise<T> {
  if (!process.stderr.isTTY) return fn();
  const start = Date.now();
  const frames = "|/-\\";
  let i = 0;
  const draw = () => process.stderr.write(`\r${frames[i++ % 4]} ${label} ${((Date.now() - start) / 1000).toFixed(0)}s`);
  const timer = setInterval(draw, 250);
  timer.unref();
  draw();
  try {
    return await fn();
  } finally {
    clearInterval(timer);
    process.stderr.write("\r\x1b[K");
  }
}

/** A line of progress from a long operation (e.g. an image build step): shown only on a terminal. */
export function progressLine(line: string): void {
  if (process.stderr.isTTY) process.stderr.write(`${line}\n`);
}
