// The request target (`req.url`) of HTTP requests and WebSocket upgrades,
// parsed without `new URL`: a target such as `//x:99999` is a path here, not a
// host, and every malformed target is a 400 naming the rule, never a throw
// that escapes a handler.
import { UserError } from "../util/errors.js";

export interface Target {
  /** The path as sent (still percent-encoded; the router decodes params). */
  path: string;
  /** Query parameters, strictly decoded (UTF-8, valid percent-encoding). */
  query: URLSearchParams;
}

const bad = (rule: string) => new UserError(400, `malformed request target: ${rule}`);

// Visible ASCII only: RFC 9112 request targets have no spaces, controls or
// raw non-ASCII bytes (Node hands such bytes over as latin-1 characters).
const VISIBLE_ASCII = /^[\x21-\x7e]*$/;

export function parseTarget(raw: string | undefined): Target {
  let target = raw ?? "/";
  if (!VISIBLE_ASCII.test(target)) throw bad("only visible ASCII is allowed (percent-encode other bytes)");
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target); // absolute-form: only its path and query count
  if (absolute) target = target.slice(absolute[0].length) || "/";
  if (!target.startsWith("/")) throw bad("it must start with /");
  const hash = target.indexOf("#");
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf("?");
  const path = q >= 0 ? target.slice(0, q) : target;
  try { decodeURIComponent(path); } catch { throw bad("the path has malformed percent-encoding or is not UTF-8"); }
  return { path, query: q >= 0 ? strictQuery(target.slice(q + 1)) : new URLSearchParams() };
}

/** Like URLSearchParams, but bad percent-encoding or non-UTF-8 is an error instead of U+FFFD. */
function strictQuery(s: string): URLSearchParams {
  const out = new URLSearchParams();
  for (const part of s.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const [k, v] = eq >= 0 ? [part.slice(0, eq), part.slice(eq + 1)] : [part, ""];
    try {
      out.append(decodeURIComponent(k.replace(/\+/g, " ")), decodeURIComponent(v.replace(/\+/g, " ")));
    } catch {
      throw bad("the query string has malformed percent-encoding or is not UTF-8");
    }
  }
  return out;
}
