// `bhatti secret set|list|delete`. set reads the value from the terminal
// without echo, from a pipe, or from a file, so it never has to appear in shell
// history or argv; a value given as an argument still works, with a warning.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { clientOptions, repeatable, run, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";
import { readHidden } from "../tty-read.js";

type Conn = { url?: string; token?: string; json?: boolean };
const MAX_VALUE = 1 << 20; // more than the daemon accepts: it names the real limit

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    n += (c as Buffer).length;
    if (n > MAX_VALUE) throw new Error(`the value on stdin is longer than ${MAX_VALUE} bytes`);
    chunks.push(c as Buffer);
  }
  return stripOneNewline(Buffer.concat(chunks));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function register(cmd: Command): void {
  clientOptions(cmd.command("set").description("create or replace a secret (value from the terminal without echo, a pipe, or --from-file)")
    .argument("<name>", "secret name (an environment variable name)")
    .argument("[value]", "the value (visible to other processes in argv: prefer the prompt, a pipe or --from-file)")
    .option("--from-file <path>", "read the value from a file, bytes kept exactly")
    .addOption(repeatable("--host <HOST>", "bind the secret to this host (api.example.com or '*.example.com'; repeatable): sandboxes get a placeholder, the egress proxy adds the value for these hosts only"))
    .option("--header <NAME>", "with --host: the only request header the value may be placed in (e.g. Authorization)")
    .option("--in-body", "with --host: substitute the value in request bodies too")
    .option("--unbind", "remove the secret's binding: sandboxes created from now on get the value itself")
    .option("--keep-value", "change only the binding (--host, --header, --in-body, --unbind) of an existing secret; no value is read"))
    .action(run(async (name: string, given: string | undefined, o: Conn & { fromFile?: string; host?: string[]; header?: string; inBody?: boolean; unbind?: boolean; keepValue?: boolean }) => {
      if (given !== undefined && o.fromFile) throw new UsageError("give the value either as an argument or with --from-file, not both");
      if (o.unbind && (o.host?.length || o.header !== undefined || o.inBody)) throw new UsageError("--unbind takes no --host, --header or --in-body");
      const binding = o.unbind ? { hosts: [] } : {
        ...(o.host?.length ? { hosts: o.host } : {}), ...(o.header !== undefined ? { header: o.header } : {}), ...(o.inBody ? { in_body: true } : {}),
      };
      if (o.keepValue) {
        if (given !== undefined || o.fromFile) throw new UsageError("--keep-value reads no value: leave out the value and --from-file");
        if (!Object.keys(binding).length) throw new UsageError("--keep-value changes only the binding: give --host, --header, --in-body or --unbind");
      }
      let value: string | undefined;
      if (o.keepValue) value = undefined;
      else if (given !== undefined) {
        process.stderr.write("warning: a value given as an argument is visible to other processes on this host (ps, /proc); use the prompt, a pipe or --from-file\n");
        value = given;
      } else {
        const bytes = o.fromFile ? readFileSync(o.fromFile)
          : process.stdin.isTTY ? await readHidden(`value for ${name} (hidden; Enter ends): `, MAX_VALUE)
          : await readStdin();
        try { value = utf8.decode(bytes); } catch { throw new Error("the value must be valid UTF-8"); }
      }
      const meta = await clientFrom(o).setSecretReporting(name, value, binding);
      if (o.json) printJson(meta);
      else {
        process.stdout.write(`secret ${meta.name} ${meta.created ? "created" : value === undefined ? "rebound" : "replaced"}: version ${meta.version} (updated ${meta.updated_at})\n`);
        if (meta.hosts) process.stdout.write(`brokered for ${meta.hosts.join(", ")}${meta.header ? ` (header ${meta.header} only)` : ""}${meta.in_body ? ", request bodies too" : ""}: sandboxes get a placeholder, never the value\n`);
        if (o.unbind) process.stderr.write("warning: unbound: sandboxes created from now on get the value itself in their env and files\n");
      }
      return 0;
    }));
  clientOptions(cmd.command("list").description("list your secrets' names and dates (values are never shown)"))
    .action(run(async (o: Conn) => {
      const list = await clientFrom(o).listSecrets();
      if (o.json) printJson(list);
      else if (!list.some((s) => s.hosts)) printTable(["NAME", "VERSION", "CREATED", "UPDATED"], list.map((s) => [s.name, s.version, s.created_at, s.updated_at]));
      else printTable(["NAME", "VERSION", "HOSTS", "CREATED", "UPDATED"], list.map((s) => [s.name, s.version, bindingText(s), s.created_at, s.updated_at]));
      return 0;
    }));
  clientOptions(cmd.command("delete").description("delete a secret").argument("<name>", "secret name"))
    .action(run(async (name: string, o: Conn) => {
      await clientFrom(o).deleteSecret(name);
      if (o.json) printJson({ name, deleted: true });
      else process.stdout.write(`secret ${name} deleted\n`);
      return 0;
    }));
}

/** A secret's binding for the table: its hosts (and header, body), or "-" when unbound. */
function bindingText(s: { hosts?: string[]; header?: string; in_body?: boolean }): string {
  if (!s.hosts) return "-";
  return s.hosts.join(",") + (s.header ? ` [${s.header}]` : "") + (s.in_body ? " +body" : "");
}

function stripOneNewline(b: Buffer): Buffer {
  if (b.length && b[b.length - 1] === 0x0a) {
    return b.length > 1 && b[b.length - 2] === 0x0d ? b.subarray(0, -2) : b.subarray(0, -1);
  }
  return b;
}
