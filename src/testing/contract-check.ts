// Checks every response the API suites receive (through harness.ts api())
// against the contract (src/api/routes.ts): a 2xx JSON body against its
// route's schema for that status, an undocumented 2xx status, NDJSON lines
// against theirs, and every error body against {error, code}. A mismatch
// throws, failing the test that made the request. Routes the contract does
// not know (added elsewhere without an entry) are left to the OpenAPI
// completeness test.
import { ROUTES } from "../api/routes.js";
import { MORE_ROUTES } from "../api/routes-more.js";
import type { Body, RouteSpec } from "../api/route.js";
import { ErrorBody } from "../api/common.js";
import { firstProblem } from "../api/check.js";
import { ERROR_CODES } from "../api/codes.js";

const compiled = [...Object.values(ROUTES as Record<string, RouteSpec>), ...MORE_ROUTES].map((spec) => ({
  spec,
  re: new RegExp("^" + spec.path.replace(/:([a-z_]+)/g, "[^/]+") + "/?$"),
}));

/** The contract's route for a request, if it has one. */
export function routeFor(method: string, path: string): RouteSpec | undefined {
  const m = method === "HEAD" ? ["HEAD", "GET"] : [method];
  for (const want of m) {
    const hit = compiled.find((r) => r.spec.method === want && r.re.test(path));
    if (hit) return hit.spec;
  }
  return undefined;
}

/** Problems of one response against the contract (empty: it conforms). */
export function responseProblems(method: string, target: string, status: number, contentType: string | null, text: string): string[] {
  const path = target.split("?")[0];
  const where = `${method} ${path} -> ${status}`;
  const isJson = (contentType ?? "").startsWith("application/json");
  const parse = (s: string): { ok: true; v: unknown } | { ok: false } => { try { return { ok: true, v: JSON.parse(s) }; } catch { return { ok: false }; } };
  if (status >= 400) {
    if (method === "HEAD" || text === "") return [];
    const p = parse(text);
    if (!p.ok) return [`${where}: the error body is not JSON`];
    const code = (p.v as { code?: unknown } | null)?.code;
    if (typeof code === "string" && !Object.hasOwn(ERROR_CODES, code)) return [`${where}: error code ${JSON.stringify(code)} is not in src/api/codes.ts (add it there, with its meaning)`];
    const problem = firstProblem(ErrorBody, p.v);
    return problem ? [`${where}: the error body breaks ErrorBody: ${problem}`] : [];
  }
  const spec = routeFor(method, path);
  if (!spec || status === 101) return [];
  const declared = spec.responses[status];
  if (!declared) return [`${where}: status ${status} is not in the contract (it has ${Object.keys(spec.responses).join(", ")})`];
  if (method === "HEAD") return [];
  const bodies: Body[] = Array.isArray(declared) ? declared : [declared];
  if ((contentType ?? "").startsWith("application/x-ndjson")) {
    const nd = bodies.find((b): b is { ndjson: typeof ErrorBody } => "ndjson" in b);
    if (!nd) return [`${where}: NDJSON is not in the contract`];
    const out: string[] = [];
    for (const line of text.split("\n").filter((l) => l.trim())) {
      const p = parse(line);
      const problem = p.ok ? firstProblem(nd.ndjson, p.v) : "not JSON";
      if (problem) out.push(`${where}: an NDJSON line breaks the contract: ${problem}`);
    }
    return out;
  }
  if (isJson) {
    const js = bodies.find((b): b is { json: typeof ErrorBody } => "json" in b);
    if (!js) return [`${where}: a JSON body is not in the contract`];
    const p = parse(text);
    if (!p.ok) return [`${where}: the body is not JSON`];
    const problem = firstProblem(js.json, p.v);
    return problem ? [`${where}: the body breaks the contract: ${problem}`] : [];
  }
  if (bodies.some((b) => "binary" in b) || (bodies.some((b) => "empty" in b) && text === "")) return [];
  return [`${where}: a ${contentType ?? "bodiless"} answer is not in the contract`];
}
