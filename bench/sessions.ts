// bench/sessions: interactive sessions through the real daemon (ns engine).
// How long a keystroke takes to come back from a shell on a pty (the bare
// reference: WebSocket -> daemon -> lohar -> pty -> back), how long a resize
// takes to reach the program (SIGWINCH handler output, after lohar ran
// `stty -F <pts>` against the session's pty), and how long a reattach takes
// to get the scrollback back.
// Run: node dist/bench/sessions.js [--n N]
import { parseArgs } from "node:util";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../src/testing/harness.js";
import { openTerm, type Term } from "../src/sandboxes/sessions-suite.js";
import { machine, printTable, timeit } from "./stats.js";

const IMAGES = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";
const { values } = parseArgs({ options: { n: { type: "string", default: "100" } } });
const N = Number(values.n);
const SB = "benchsess";

async function main(): Promise<void> {
  const d: Daemon = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES } });
  let key = "";
  try {
    key = createUser(d.dataDir, "bench");
    if ((await api(d, "POST", "/sandboxes", { key, body: { name: SB } })).status !== 201) throw new Error("create failed");
    // A program that answers each line and each window change at once.
    const t: Term = await openTerm(d.url, key, SB, {
      rows: 24, cols: 80,
      cmd: ["/bin/sh", "-c", "stty -echo; trap 'echo W$(stty size | tr \" \" x)' WINCH; while :; do read -r l && echo \"E$l\"; done"],
    });
    await t.next("session");
    let mark = 0;
    const seen = async (s: string) => { while (t.text.indexOf(s, mark) < 0) await new Promise((r) => setImmediate(r)); mark = t.text.indexOf(s, mark) + s.length; };
    const echo = await timeit(N, async (i) => { t.type(`k${i}\n`); await seen(`Ek${i}\n`); });
    const resize = await timeit(N, async (i) => {
      const rows = 30 + (Math.abs(i) % 50), cols = 100 + (Math.abs(i) % 50);
      t.ws.send(JSON.stringify({ type: "resize", rows, cols }));
      await seen(`W${rows}x${cols}\n`);
    });
    const id = t.messages.find((m) => m.type === "session")!.session.id;
    t.ws.send(JSON.stringify({ type: "detach" }));
    await t.closed;
    const reattach = await timeit(Math.min(N, 50), async () => {
      const b = await openTerm(d.url, key, SB, {}, id);
      await b.until(/Ek0\n/);
      b.ws.send(JSON.stringify({ type: "detach" }));
      await b.closed;
    }, 3);
    console.log(`bench/sessions on ${machine()}, ${new Date().toISOString()}\n`);
    printTable("sessions (ns engine, over the session WebSocket)", [
      { name: "ref: keystroke line echoed by the program on the pty", samples: echo },
      { name: "resize seen by the program (SIGWINCH + stty size)", samples: resize, ref: "ref: keystroke line echoed by the program on the pty" },
      { name: "reattach: connect + scrollback replayed", samples: reattach, ref: "ref: keystroke line echoed by the program on the pty" },
    ]);
  } finally {
    if (key) await api(d, "DELETE", `/sandboxes/${SB}`, { key }).catch(() => {}); // a sandbox outlives its daemon: never leave one
    await d.stop();
    cleanup(d.dataDir);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
