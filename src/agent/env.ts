// The environment of every command: exactly defaults < config drive env <
// request env. Nothing of lohar's own process.env takes part.
import { GUEST } from "../protocol/agent.js";

export function commandEnv(configEnv: Readonly<Record<string, string>>, requestEnv?: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, GUEST.defaultEnv, configEnv);
  if (requestEnv) {
    if (typeof requestEnv !== "object") throw new Error("env must be an object");
    for (const [k, v] of Object.entries(requestEnv)) {
      // Name the variable, never its value.
      if (typeof v !== "string") throw new Error(`env ${JSON.stringify(k.slice(0, 64))}: value must be a string`);
      if (k === "" || k.includes("=") || k.includes("\0")) throw new Error(`env ${JSON.stringify(k.slice(0, 64))}: invalid name`);
      if (v.includes("\0")) throw new Error(`env ${JSON.stringify(k.slice(0, 64))}: value contains a NUL byte`);
      env[k] = v;
    }
  }
  return env;
}
