// `bhatti setup`: check a url + key against the daemon, then save them.
import { parse, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { BhattiClient } from "../../client/index.js";
import { configPath, resolveConnection, writeConfig } from "../config.js";

const USAGE = "bhatti setup [--url URL] --token KEY [--json]";

export async function setupCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {}, { usage: USAGE });
  const { url, token } = resolveConnection(values);
  if (!token) throw new UsageError(`--token is required\nusage: ${USAGE}`);
  const client = new BhattiClient({ url, token });
  await client.health();
  await client.listSecrets(); // proves the key is valid
  writeConfig({ url, token });
  if (values.json) printJson({ url, config: configPath() });
  else process.stdout.write(`connected to ${url}; saved to ${configPath()}\n`);
  return 0;
}
