// Checks a value against a schema and turns the first broken rule into a 400
// whose message names the rule and the field, never the value. A schema may
// carry `errorMessage`: a string, or an object keyed by kind of failure
// ("type": wrong type or missing, "required": missing, "additional": a key not
// allowed, "default": anything else). `{path}` is the field (files[0].path),
// `{key}` its last key, JSON-quoted and cut to 64 characters (`{rawkey}`
// unquoted, only where a pattern already checked the key).
import type { TSchema, Static } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { ValueErrorType, type ValueError } from "@sinclair/typebox/errors";
import { UserError } from "../util/errors.js";

type Messages = string | { type?: string; required?: string; additional?: string; default?: string };

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function compile<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) { c = TypeCompiler.Compile(schema); compiled.set(schema, c); }
  return c as TypeCheck<T>;
}

const TYPE_ERRORS = new Set([
  ValueErrorType.String, ValueErrorType.Integer, ValueErrorType.Number, ValueErrorType.Boolean, ValueErrorType.Array,
  ValueErrorType.Object, ValueErrorType.Literal, ValueErrorType.Null, ValueErrorType.Union, ValueErrorType.Undefined,
]);

/** JSON pointer /files/0/path -> files[0].path */
function field(pointer: string): string {
  const parts = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  return parts.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join("") || "body";
}

function lastKey(pointer: string): string {
  const k = pointer.split("/").pop() ?? "";
  return JSON.stringify(k.replace(/~1/g, "/").replace(/~0/g, "~").slice(0, 64));
}

/** The last key unquoted: only for keys a pattern already allowed (env names). */
function rawKey(pointer: string): string {
  return (pointer.split("/").pop() ?? "").slice(0, 256);
}

/** Of a union's failed variants, the error that says most: one inside the value rather than a bare type mismatch. */
function innermost(e: ValueError): ValueError {
  if (e.type !== ValueErrorType.Union || !e.errors?.length) return e;
  const firsts = e.errors.map((it) => it.First()).filter((x): x is ValueError => x !== undefined);
  const deeper = firsts.find((x) => x.path !== e.path || !TYPE_ERRORS.has(x.type));
  if (!deeper) return e;
  const inner = innermost(deeper);
  return messageOf(inner) ? inner : (messageOf(e) ? e : inner);
}

function messageOf(e: ValueError): string | undefined {
  const m = (e.schema as { errorMessage?: Messages }).errorMessage;
  if (m === undefined) return undefined;
  if (typeof m === "string") return m;
  if (e.type === ValueErrorType.ObjectRequiredProperty) return m.required ?? m.type ?? m.default;
  if (e.type === ValueErrorType.ObjectAdditionalProperties) return m.additional ?? m.default;
  if (TYPE_ERRORS.has(e.type)) return m.type ?? m.default;
  return m.default;
}

/** The message for the first broken rule of `value` (undefined if it passes). */
export function firstProblem(schema: TSchema, value: unknown): string | undefined {
  const c = compile(schema);
  if (c.Check(value)) return undefined;
  const first = c.Errors(value).First();
  if (!first) return "request is not valid";
  const e = innermost(first);
  const msg = messageOf(e);
  const at = field(e.path);
  if (msg) return msg.replace(/\{path\}/g, at).replace(/\{key\}/g, lastKey(e.path)).replace(/\{rawkey\}/g, rawKey(e.path));
  // TypeBox's own messages name the rule ("Expected integer") and never quote the value.
  return e.type === ValueErrorType.ObjectRequiredProperty ? `${at} is required` : `${at}: ${e.message.replace(/^Expected/, "expected")}`;
}

/** `value` typed by the schema, or a 400 naming the first broken rule. */
export function check<T extends TSchema>(schema: T, value: unknown): Static<T> {
  const problem = firstProblem(schema, value);
  if (problem !== undefined) throw new UserError(400, problem, {}, "invalid_request");
  return value as Static<T>;
}

/** Whether `value` matches the schema (for response checks in tests). */
export function matches(schema: TSchema, value: unknown): boolean {
  return compile(schema).Check(value);
}
