// Builds the API client from global flags, env and the config file.
import { BhattiClient } from "../client/index.js";
import { resolveConnection } from "./config.js";

export function clientFrom(values: { url?: string; token?: string }): BhattiClient {
  return new BhattiClient(resolveConnection(values));
}
