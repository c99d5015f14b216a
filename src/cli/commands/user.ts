// `bhatti user …`: operator commands on the local database (no daemon needed).
import { parse, intOption, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { resolveDataDir, ensureDataDir, dataPaths } from "../../util/paths.js";
import { openDb } from "../../store/db.js";
import { UserService, DEFAULT_LIMITS } from "../../users/service.js";

const USAGE = "bhatti user create --name N [--max-sandboxes 5] [--max-cpus 4] [--max-memory 4096] [--max-disk 20480] | list | rotate-key N | delete N [--force]  [--data-dir DIR] [--json]";

function withUsers<T>(dataDirFlag: string | undefined, fn: (u: UserService) => T): T {
  const db = openDb(dataPaths(ensureDataDir(resolveDataDir(dataDirFlag))).db);
  try { return fn(new UserService(db)); } finally { db.close(); }
}

export async function userCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "create": {
      const { values } = parse(rest, {
        name: { type: "string" }, "max-sandboxes": { type: "string" }, "max-cpus": { type: "string" }, "max-memory": { type: "string" }, "max-disk": { type: "string" },
      }, { usage: USAGE });
      if (!values.name) throw new UsageError(`--name is required\nusage: ${USAGE}`);
      const limits = {
        max_sandboxes: intOption("max-sandboxes", values["max-sandboxes"], DEFAULT_LIMITS.max_sandboxes),
        max_cpus: intOption("max-cpus", values["max-cpus"], DEFAULT_LIMITS.max_cpus),
        max_memory_mb: intOption("max-memory", values["max-memory"], DEFAULT_LIMITS.max_memory_mb),
        max_disk_mb: intOption("max-disk", values["max-disk"], DEFAULT_LIMITS.max_disk_mb),
      };
      const { user, apiKey } = withUsers(values["data-dir"], (u) => u.create(values.name!, limits));
      if (values.json) printJson({ ...user, api_key: apiKey });
      else {
        process.stdout.write(`created user ${user.name}\napi key (shown once, store it now): ${apiKey}\n`);
      }
      return 0;
    }
    case "list": {
      const { values } = parse(rest, {}, { usage: USAGE });
      const users = withUsers(values["data-dir"], (u) => u.list());
      if (values.json) printJson(users);
      else printTable(["NAME", "SECRETS", "SANDBOXES", "MAX_SANDBOXES", "MAX_CPUS", "MAX_MEMORY_MB", "MAX_DISK_MB", "CREATED"],
        users.map((u) => [u.name, u.secrets, u.sandboxes, u.max_sandboxes, u.max_cpus, u.max_memory_mb, u.max_disk_mb, u.created_at]));
      return 0;
    }
    case "rotate-key": {
      const { values, positionals } = parse(rest, {}, { usage: USAGE, positionals: [1, 1] });
      const apiKey = withUsers(values["data-dir"], (u) => u.rotateKey(positionals[0]));
      if (values.json) printJson({ name: positionals[0], api_key: apiKey });
      else process.stdout.write(`new api key for ${positionals[0]} (shown once; the old key no longer works): ${apiKey}\n`);
      return 0;
    }
    case "delete": {
      const { values, positionals } = parse(rest, { force: { type: "boolean" } }, { usage: USAGE, positionals: [1, 1] });
      const res = withUsers(values["data-dir"], (u) => u.delete(positionals[0], !!values.force));
      if (values.json) printJson({ name: positionals[0], deleted: true, ...res });
      else process.stdout.write(`deleted user ${positionals[0]}${res.secrets || res.sandboxes ? ` with ${res.secrets} secret(s) and ${res.sandboxes} sandbox(es)` : ""}\n`);
      return 0;
    }
    default:
      throw new UsageError(`usage: ${USAGE}`);
  }
}
