import protobuf from 'protobufjs';
import { AviaryError } from '@aviary/errors';
import { TYPE_URL_PREFIX, typeNameOf } from '@aviary/xds-api';
import { LookupPolicy } from './lookup-policy';
import { lookupType } from './root';

/**
 * Canonical form of a message, as `decodeResource` returns it and as `packAny`/`encodeResource`
 * accept it: a plain object with proto (snake_case) field names and only the fields that are
 * set; enums as names; 64-bit integers as numbers; bytes as base64; nested `google.protobuf.Any`
 * as `{ '@type': 'type.googleapis.com/<full.Name>', ...fields }`; empty repeated fields and maps
 * omitted. Explicitly set default values are kept (protobufjs writes them), so they round-trip.
 */
export type CanonicalMessage = { [field: string]: unknown };

export const ANY = 'google.protobuf.Any';

export function fail(path: string, reason: string): never {
  throw new AviaryError('INVALID_ARGUMENT', 'XDS_RESOURCE_INVALID', `${path}: ${reason}`, { path, reason });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/**
 * protobufjs's `Type.fullName` is a getter that rebuilds the dotted name by walking the parents
 * on every read; the loaded root is never mutated, so the name of a type is cached here.
 */
const fullNames = new WeakMap<protobuf.Type, string>();

export function fullNameOf(type: protobuf.Type): string {
  let name = fullNames.get(type);
  if (name === undefined) {
    name = type.fullName.slice(1);
    fullNames.set(type, name);
  }
  return name;
}

/**
 * A value that does not verify, with its path below the message being verified. Paths are
 * built only on failure: each level prepends its segment (`.field`, `[index]`, `[key]`,
 * `<Type>`) while the failure unwinds, and `canonicalMessage` turns it into the AviaryError.
 */
class Invalid {
  constructor(
    public path: string,
    readonly reason: string,
  ) {}
}

function invalid(reason: string, path = ''): never {
  throw new Invalid(path, reason);
}

function below(segment: string, cause: unknown): unknown {
  if (cause instanceof Invalid) cause.path = segment + cause.path;
  return cause;
}

/** Verifies one value of a field (an element of a repeated field, a value of a map) and returns its canonical form. */
type Convert = (value: unknown) => unknown;

/** Per message type, its fields by proto name, each with a converter of the field's value as given, chosen once. */
interface MessagePlan {
  readonly type: protobuf.Type;
  readonly fullName: string;
  readonly isAny: boolean;
  /** The canonical form of a field's value; `undefined` for an empty repeated field or map, which are left out. */
  readonly fields: ReadonlyMap<string, Convert>;
}

const plans = new WeakMap<protobuf.Type, MessagePlan>();

function planOf(type: protobuf.Type): MessagePlan {
  let plan = plans.get(type);
  if (!plan) {
    const fields = new Map<string, Convert>();
    for (const name of Object.keys(type.fields)) fields.set(name, fieldConverterOf(type.fields[name]!));
    const fullName = fullNameOf(type);
    plan = { type, fullName, isAny: fullName === ANY, fields };
    plans.set(type, plan);
  }
  return plan;
}

function converterOf(field: protobuf.Field): Convert {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    // Planned on first use: message types nest themselves (Struct, Value, ListValue).
    let nested: MessagePlan | undefined;
    return (value) => messageOf((nested ??= planOf(resolved)), value);
  }
  if (resolved instanceof protobuf.Enum) return enumConverter(resolved);
  return scalarConverter(field.type);
}

function enumConverter(en: protobuf.Enum): Convert {
  const { name, values, valuesById } = en;
  return (value) => {
    if (typeof value === 'string') {
      if (!(value in values)) invalid(`unknown ${name} value ${value}`);
      return value;
    }
    if (typeof value === 'number' && Number.isInteger(value)) return valuesById[value] ?? value;
    return invalid(`expected an enum name or number for ${name}`);
  };
}

function integer32(t: string, min: number, max: number): Convert {
  return (value) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) invalid(`expected an integer, got ${JSON.stringify(value)}`);
    if (value < min || value > max) invalid(`${value} is out of range for ${t}`);
    return value;
  };
}

function integer64(t: string): Convert {
  const unsigned = t.startsWith('u') || t.startsWith('fixed');
  return (value) => {
    let n: number;
    if (typeof value === 'number') n = value;
    else if (typeof value === 'string' && /^-?\d+$/.test(value)) n = Number(value);
    else if (typeof value === 'object' && value !== null && typeof (value as { toNumber?: unknown }).toNumber === 'function') n = (value as { toNumber(): number }).toNumber();
    else invalid(`expected an integer, got ${JSON.stringify(value)}`);
    if (!Number.isSafeInteger(n)) invalid(`${String(value)} is not a safe integer`);
    if (unsigned && n < 0) invalid(`${n} is out of range for ${t}`);
    return n;
  };
}

function scalarConverter(t: string): Convert {
  switch (t) {
    case 'string':
      return (value) => (typeof value === 'string' ? value : invalid(`expected a string, got ${typeof value}`));
    case 'bool':
      return (value) => (typeof value === 'boolean' ? value : invalid(`expected a boolean, got ${typeof value}`));
    case 'double':
      return (value) => (typeof value === 'number' ? value : invalid(`expected a number, got ${typeof value}`));
    case 'float':
      return (value) => (typeof value === 'number' ? Math.fround(value) : invalid(`expected a number, got ${typeof value}`));
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return integer32(t, -0x80000000, 0x7fffffff);
    case 'uint32':
    case 'fixed32':
      return integer32(t, 0, 0xffffffff);
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64':
      return integer64(t);
    case 'bytes':
      return (value) => {
        if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
        if (typeof value === 'string') return value;
        return invalid('expected bytes (Uint8Array or base64 string)');
      };
    default:
      return () => invalid(`unsupported scalar type ${t}`);
  }
}

function fieldConverterOf(field: protobuf.Field): Convert {
  const one = converterOf(field);
  if (field instanceof protobuf.MapField) return (raw) => mapOf(one, raw);
  if (!field.repeated) return one;
  const element = (v: unknown, i: number): unknown => {
    if (v === undefined || v === null) invalid('null element', `[${i}]`);
    try {
      return one(v);
    } catch (cause) {
      throw below(`[${i}]`, cause);
    }
  };
  return (raw) => {
    if (!Array.isArray(raw)) invalid('expected an array');
    return raw.length === 0 ? undefined : listOf(element, raw);
  };
}

/**
 * The canonical elements of a non-empty array: `raw` itself when every element is canonical
 * already, else a copy from the first one that is not (a hole stays a hole, as `map` keeps it).
 */
function listOf(element: (v: unknown, i: number) => unknown, raw: unknown[]): unknown[] {
  // An array of another class is copied by `map`, as before (a subclass makes its own kind).
  if (Object.getPrototypeOf(raw) !== Array.prototype) return raw.map(element);
  let out: unknown[] | undefined;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    if (v === undefined && !(i in raw)) {
      out ??= raw.slice(0, i);
      out.length = i + 1;
      continue;
    }
    const canonical = element(v, i);
    if (out !== undefined) out[i] = canonical;
    else if (canonical !== v) (out = raw.slice(0, i))[i] = canonical;
  }
  return out ?? raw;
}

/**
 * The canonical entries of a map, `undefined` when none is set: `raw` itself when it is a plain
 * object whose values are all canonical already, else a copy from the first entry that is not.
 */
function mapOf(convert: Convert, raw: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(raw)) invalid('expected a map object');
  const keys = Object.keys(raw);
  let same = Object.getPrototypeOf(raw) === Object.prototype;
  let map: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = raw[k];
    if (v === undefined || v === null) {
      if (same) map = entriesBefore(raw, keys, i);
      same = false;
      continue;
    }
    let canonical: unknown;
    try {
      canonical = convert(v);
    } catch (cause) {
      throw below(`[${k}]`, cause);
    }
    if (same) {
      // An own key `__proto__` is copied, so that it sets the copy's prototype as always (the spec pins that).
      if (canonical === v && k !== '__proto__') continue;
      map = entriesBefore(raw, keys, i);
      same = false;
    }
    map ??= {};
    map[k] = canonical;
  }
  return same ? (keys.length === 0 ? undefined : raw) : map;
}

/** A copy of the first `end` entries (all canonical), `undefined` when there are none. */
function entriesBefore(raw: Record<string, unknown>, keys: readonly string[], end: number): Record<string, unknown> | undefined {
  return end === 0 ? undefined : fieldsBefore(raw, keys, end, undefined);
}

function unknownField(type: protobuf.Type, key: string): never {
  // A name of Object.prototype (`constructor`, `__proto__`) finds no field but a member of the
  // prototype in `type.fields`, which the scalar check refused: it still does.
  const inherited = (type.fields as Record<string, { type?: unknown } | undefined>)[key];
  if (inherited) invalid(`unsupported scalar type ${String(inherited.type)}`, `.${key}`);
  const hint = Object.keys(type.fields).find((f) => protobuf.util.camelCase(f) === key);
  return invalid(`unknown field of ${fullNameOf(type)}${hint ? ` (did you mean ${hint}?)` : ''}`, `.${key}`);
}

/**
 * The canonical fields of `value`, behind `@type` when `typeUrl` is given (an Any's inner
 * message, `value['@type']`, whose own `@type` key is then no field). That is `value` itself
 * when it is canonical already, as translators' output mostly is: a plain object whose fields
 * are all canonical, in that order (`@type` first). Otherwise it is a copy from the first field
 * that is not, so a message is copied only where its canonical form differs.
 */
function fieldsOf(plan: MessagePlan, value: Record<string, unknown>, typeUrl: string | undefined): CanonicalMessage {
  const keys = Object.keys(value);
  let out: CanonicalMessage | undefined;
  let i = 0;
  if (Object.getPrototypeOf(value) !== Object.prototype) out = fieldsBefore(value, keys, 0, typeUrl);
  else if (typeUrl !== undefined && keys[0] === '@type') i = 1;
  else if (typeUrl !== undefined) out = fieldsBefore(value, keys, 0, typeUrl);
  for (; i < keys.length; i++) {
    const key = keys[i]!;
    if (typeUrl !== undefined && key === '@type') continue;
    const raw = value[key];
    if (raw === undefined || raw === null) {
      out ??= fieldsBefore(value, keys, i, typeUrl);
      continue;
    }
    const convert = plan.fields.get(key) ?? unknownField(plan.type, key);
    let canonical: unknown;
    try {
      canonical = convert(raw);
    } catch (cause) {
      throw below(`.${key}`, cause);
    }
    if (out === undefined) {
      if (canonical === raw) continue;
      out = fieldsBefore(value, keys, i, typeUrl);
    }
    if (canonical !== undefined) out[key] = canonical;
  }
  return out ?? value;
}

/** A copy of the fields before `keys[end]` (all canonical), behind `@type` when `typeUrl` is given. */
function fieldsBefore(value: Record<string, unknown>, keys: readonly string[], end: number, typeUrl: string | undefined): CanonicalMessage {
  const out: CanonicalMessage = typeUrl === undefined ? {} : { '@type': typeUrl };
  for (let j = 0; j < end; j++) {
    const key = keys[j]!;
    if (typeUrl === undefined || key !== '@type') out[key] = value[key];
  }
  return out;
}

function messageOf(plan: MessagePlan, value: unknown): CanonicalMessage {
  if (!isPlainObject(value)) invalid(`expected a ${plan.fullName} object`);
  if (plan.isAny) return canonicalAny(value);
  return fieldsOf(plan, value, undefined);
}

/**
 * Verifies `value` against `type` and returns its canonical form. Unknown fields are errors:
 * `XDS_RESOURCE_INVALID` with `{ path, reason }`, the path from `path` down to the value.
 */
export function canonicalMessage(type: protobuf.Type, value: unknown, path = type.name): CanonicalMessage {
  try {
    return messageOf(planOf(type), value);
  } catch (cause) {
    if (cause instanceof Invalid) fail(path + cause.path, cause.reason);
    throw cause;
  }
}

/**
 * Canonical forms of `{ '@type', ...fields }` Anys by their JSON text. Translators repeat the
 * same nested messages (TLS contexts, filters) in many resources; this verifies each once (and
 * the canonical writer encodes each once). JSON stands for the input only when it has no `null`
 * (which may be NaN or Infinity) and does not throw (BigInt); a canonical object from here is
 * deep-frozen because resources share it.
 */
const anyByJson = new Map<string, CanonicalMessage>();
const ANY_CACHE_MAX = 2048;
/** Larger messages (a route table inside an HttpConnectionManager) are rarely repeated whole. */
const ANY_CACHE_MAX_JSON = 2048;

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * A deep-frozen copy of a canonical form that may hold the input's own objects (`fieldsOf`
 * returns those that are canonical already): those are not the cache's to freeze. Frozen
 * objects (Anys from the cache) are shared as they are; a hole stays a hole; a prototype that a
 * map key `__proto__` set is kept, unfrozen, as `deepFreeze` leaves it.
 */
function frozenCopy<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) if (i in value) out[i] = frozenCopy(value[i]);
    return Object.freeze(out) as T;
  }
  const out = Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>;
  for (const k of Object.keys(value)) out[k] = frozenCopy((value as Record<string, unknown>)[k]);
  return Object.freeze(out) as T;
}

/** The JSON text an Any's canonical form is cached under, `undefined` when it cannot stand for the input or is too large. */
export function anyKey(value: Record<string, unknown>): string | undefined {
  try {
    const json = JSON.stringify(value);
    return json.length > ANY_CACHE_MAX_JSON || json.includes('null') ? undefined : json;
  } catch {
    return undefined;
  }
}

/**
 * Canonical forms of `{ '@type', ... }` Anys by the input object, whatever their size: a
 * translator puts one object in several places (an HttpConnectionManager in the mTLS and the
 * plaintext filter chain of a port), and like every input to the encoder it does not change.
 */
const anyByObject = new WeakMap<Record<string, unknown>, CanonicalMessage>();

/**
 * Per `@type`, whether looking Anys up by their JSON pays. Most types' Anys repeat (a TLS
 * context, a filter's config); some never do, being per service or too large to be cached (a
 * port's HttpConnectionManager, an access log naming the service), and producing their JSON
 * only to miss is most of what verifying them costs. Bounded: past `KEY_POLICIES_MAX` type URLs
 * (only loaded types get here more than once) every type is looked up.
 */
const keyPolicies = new Map<string, LookupPolicy>();
const KEY_POLICIES_MAX = 1024;

let adaptive = true;

/**
 * With `false`, every Any is looked up by its JSON, as before the policies: canonical.spec.ts
 * compares with that implementation, whose caching shows in which objects are frozen and shared.
 */
export function lookUpAnysAdaptively(on: boolean): void {
  adaptive = on;
  keyPolicies.clear();
}

function keyPolicyOf(typeUrl: unknown): LookupPolicy | undefined {
  if (!adaptive || typeof typeUrl !== 'string') return undefined;
  let policy = keyPolicies.get(typeUrl);
  if (policy === undefined && keyPolicies.size < KEY_POLICIES_MAX) keyPolicies.set(typeUrl, (policy = new LookupPolicy()));
  return policy;
}

function canonicalAny(value: Record<string, unknown>): CanonicalMessage {
  if (value['@type'] === undefined) return canonicalAnyOnce(value);
  const seen = anyByObject.get(value);
  if (seen) return seen;
  const policy = keyPolicyOf(value['@type']);
  const wanted = policy === undefined || policy.want();
  const key = wanted ? anyKey(value) : undefined;
  let canonical = key === undefined ? undefined : anyByJson.get(key);
  if (canonical !== undefined) {
    policy?.hit();
  } else if (key === undefined) {
    // Not looked up, or too large or not standing for its input: verified on its own, not frozen.
    if (wanted) policy?.missed();
    canonical = canonicalAnyOnce(value);
  } else {
    policy?.missed();
    canonical = frozenCopy(canonicalAnyOnce(value));
    if (anyByJson.size >= ANY_CACHE_MAX) anyByJson.clear();
    anyByJson.set(key, canonical);
  }
  anyByObject.set(value, canonical);
  return canonical;
}

/** The canonical Any: `@type` first, then the fields of the inner message in the order given. */
function innerOf(type: protobuf.Type, typeUrl: string, value: Record<string, unknown>, skipAtType: boolean): CanonicalMessage {
  const plan = planOf(type);
  try {
    // A decoded message (`skipAtType` false) has no `@type` key to skip.
    if (!plan.isAny) return fieldsOf(plan, value, typeUrl);
    // An Any packed in an Any: verified as an Any of its own (its `@type` is the inner one's).
    const inner = skipAtType ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== '@type')) : value;
    return { '@type': typeUrl, ...canonicalAny(inner) };
  } catch (cause) {
    throw below(`<${type.name}>`, cause);
  }
}

function canonicalAnyOnce(value: Record<string, unknown>): CanonicalMessage {
  const atType = value['@type'];
  let typeUrl: unknown;
  if (atType !== undefined) {
    typeUrl = atType;
  } else {
    for (const key of Object.keys(value)) {
      if (key !== 'type_url' && key !== 'value' && value[key] !== undefined) invalid('unknown field of google.protobuf.Any', `.${key}`);
    }
    typeUrl = value.type_url;
  }
  if (typeof typeUrl !== 'string' || !typeUrl.startsWith(TYPE_URL_PREFIX) || typeUrl.length === TYPE_URL_PREFIX.length) {
    invalid(`an Any needs a type URL of the form ${TYPE_URL_PREFIX}<full.Name>, got ${JSON.stringify(typeUrl)}`);
  }
  let type: protobuf.Type | undefined;
  try {
    type = lookupType(typeNameOf(typeUrl));
  } catch {
    type = undefined;
  }
  if (atType !== undefined) {
    if (!type) invalid(`cannot pack ${typeUrl}: its proto is not loaded`);
    return innerOf(type, typeUrl, value, true);
  }
  const bytes = value.value ?? new Uint8Array(0);
  if (!(bytes instanceof Uint8Array) && typeof bytes !== 'string') invalid('expected bytes', '.value');
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'base64') : bytes;
  if (!type) return { type_url: typeUrl, value: Buffer.from(buf).toString('base64') };
  let decoded: protobuf.Message;
  try {
    decoded = type.decode(buf);
  } catch (cause) {
    return invalid(`the packed ${type.name} does not decode: ${(cause as Error).message}`);
  }
  return innerOf(type, typeUrl, decoded as unknown as Record<string, unknown>, false);
}
