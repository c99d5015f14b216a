// The engines bhatti has, in one place: every list of engine names (the
// daemon's sweeps, request checks, image manifests, the API schema) comes
// from here. A new engine is one name here and one factory in
// src/sandboxes/engines.ts.
export const ENGINE_NAMES = ["ns", "vm"] as const;
export type EngineName = typeof ENGINE_NAMES[number];

export function isEngineName(v: unknown): v is EngineName {
  return typeof v === "string" && (ENGINE_NAMES as readonly string[]).includes(v);
}

/** `"ns" or "vm"`, for messages. */
export const ENGINE_LIST = ENGINE_NAMES.map((n) => JSON.stringify(n)).join(" or ").replace(/ or (?=.* or )/g, ", ");
