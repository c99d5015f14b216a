#!/usr/bin/env node
// The bhatti command, on commander. Every command lives in its own module under
// ./commands and is imported only when it runs (or when its help is asked for),
// so a client command never loads the daemon, the engines or the store.
import { Command, CommanderError } from "commander";
import { VERSION } from "../version.js";
import { COMMANDS, type Entry } from "./registry.js";
import { reportError, wantsJson, installPipeGuard } from "./errors.js";

/** The name of the command argv asks for (the word after `help`, for `help CMD`). */
function chosen(argv: string[]): string | undefined {
  const words = argv.filter((a) => !a.startsWith("-"));
  return words[0] === "help" ? words[1] : words[0];
}

export async function buildProgram(argv: string[], json: boolean): Promise<Command> {
  const program = new Command("bhatti")
    .description("bhatti: Linux sandboxes for agents, with a write-only secret store")
    .version(VERSION, "-V, --version", "print the bhatti version")
    .helpOption("-h, --help", "show help (starts and changes nothing)")
    .helpCommand("help [command]", "show help for a command")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (s, write) => { if (!json) write(s.replace(/^error: /, "bhatti: ")); } });
  program.addHelpText("after", "\nRun `bhatti help COMMAND` for a command's flags. Docs: docs/cli.md");
  const want = chosen(argv);
  const all = want === "completion";
  for (const e of COMMANDS) {
    const cmd = program.command(e.name).description(e.summary);
    if (all || e.name === want) (await e.load())(cmd);
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const json = wantsJson(argv);
  installPipeGuard();
  try {
    const program = await buildProgram(argv, json);
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      process.exitCode = 2;
      return;
    }
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) { process.exitCode = 0; return; } // --help, --version
      if (json) reportError(new CommanderUsage(err.message), true);
      process.exitCode = 2;
      return;
    }
    process.exitCode = reportError(err, json);
  }
}

class CommanderUsage extends Error {
  readonly usage = true;
  constructor(message: string) { super(message.replace(/^error: /, "")); }
}

export type { Entry };

void main(process.argv.slice(2));
