// Bearer-key authentication. Keys are accepted only in the Authorization header.
import type { IncomingMessage } from "node:http";
import { UserError } from "../util/errors.js";
import type { User, UserService } from "../users/service.js";

export function authenticate(req: IncomingMessage, query: URLSearchParams, users: UserService): User {
  for (const [, v] of query) {
    if (v.startsWith("bht_")) throw new UserError(401, "api keys are not accepted in the query string; send Authorization: Bearer <key>");
  }
  const header = req.headers.authorization;
  if (!header) throw new UserError(401, "authorization required");
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new UserError(401, "authorization required");
  const user = users.authenticate(m[1]);
  if (!user) throw new UserError(401, "invalid api key");
  return user;
}
