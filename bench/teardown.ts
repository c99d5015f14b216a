// The network benches' end: the daemon leaves sandboxes running when it stops,
// so every one is destroyed first; then the daemon, its data dir and the test internet go.
import { api, cleanup, type Daemon } from "../src/testing/harness.js";
import type { TestInternet } from "../src/testing/internet.js";

export async function teardown(d: Daemon | undefined, key: string, net: TestInternet | undefined): Promise<void> {
  try {
    if (d) {
      try {
        for (const s of (await api(d, "GET", "/sandboxes", { key })).json ?? []) await api(d, "DELETE", `/sandboxes/${s.id}`, { key });
      } finally {
        await d.stop();
        cleanup(d.dataDir);
      }
    }
  } finally {
    await net?.close();
  }
}
