#!/usr/bin/env node
// The bhatti command: dispatches to subcommands; errors become one line on stderr.
import { UsageError } from "./args.js";
import { serveCommand } from "./commands/serve.js";
import { userCommand } from "./commands/user.js";
import { keyCommand } from "./commands/key.js";
import { secretCommand } from "./commands/secret.js";
import { setupCommand } from "./commands/setup.js";
import { createCommand, listCommand, inspectCommand, destroyCommand } from "./commands/sandbox.js";
import { execCommand } from "./commands/exec.js";
import { templateCommand } from "./commands/template.js";
import { fileCommand } from "./commands/file.js";
import { imageCommand } from "./commands/image.js";
import { infoCommand } from "./commands/info.js";
import { adminCommand } from "./commands/admin.js";
import { netCommand } from "./commands/net.js";
import { forwardCommand, portsCommand } from "./commands/ports.js";

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  user: userCommand,
  key: keyCommand,
  secret: secretCommand,
  setup: setupCommand,
  info: infoCommand,
  admin: adminCommand,
  image: imageCommand,
  create: createCommand,
  list: listCommand,
  inspect: inspectCommand,
  exec: execCommand,
  destroy: destroyCommand,
  template: templateCommand,
  file: fileCommand,
  net: netCommand,
  ports: portsCommand,
  forward: forwardCommand,
};

const HELP = `bhatti — sandboxes with a write-only secret store

daemon and operator commands (local, on the daemon host):
  serve [--data-dir DIR] [--listen HOST:PORT]   run the daemon
  user create|list|rotate-key|delete            manage users and API keys
  key rotate                                    re-encrypt all secrets under a new age key
  image build|import|list|inspect|delete        guest images: minimal (busybox), debian, imported
  admin backup --to DIR                         consistent copy of age.key + state.db

client commands (talk to the daemon's API):
  setup --url URL --token KEY                   check and save connection settings
  info                                          daemon version, engines, accelerator
  secret set NAME [VALUE] | list | delete NAME  manage your secrets
  create --name N [--secret S]... [--env K=V]... [--file L:G[:M]]... [--template T]
  list | inspect SB | destroy SB                sandboxes
  exec SB [--env K=V]... [-t] -- CMD...         run a command (streams, exit code forwarded)
  file read|write|ls SB PATH                    files in a sandbox, as its user
  template create|list|delete                   presets with pre-configured secret names
  net show SB | net set SB --egress E [--allow-host H]... [--allow-cidr C]...   egress policy
  ports SB | forward SB GUEST_PORT [LOCAL_PORT]  listening ports; a local port to a sandbox port

global flags: --url URL  --token KEY  --json  --data-dir DIR
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "help" || cmd === "--help" || cmd === "-h") {
    process.stdout.write(HELP);
    return cmd ? 0 : 2;
  }
  const run = COMMANDS[cmd];
  if (!run) throw new UsageError(`unknown command ${JSON.stringify(cmd)}\n\n${HELP}`);
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`bhatti: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    // Messages are safe to show: API errors, key-file errors and errno messages name paths and rules, never values.
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`bhatti: ${msg.split("\n")[0]}\n`);
    process.exitCode = 1;
  },
);
