import { AviaryError } from '@aviary/errors';

/**
 * Helpers for reading Envoy v3 resources in the canonical proto-JSON shape that
 * `@aviary/xds-protos` decodes to: snake_case field names, enums as names, wrappers as
 * `{ value }`, Durations as `{ seconds, nanos }`, nested Anys as `{ '@type', ...fields }`.
 * Every failure names the field path, so the xDS client can NACK with a precise error.
 */
export type Raw = Readonly<Record<string, unknown>>;

export class ProxyConfigError extends AviaryError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super('INVALID_ARGUMENT', 'PROXY_CONFIG_INVALID', `${path}: ${reason}`, { path, reason });
  }
}

export function invalid(path: string, reason: string): never {
  throw new ProxyConfigError(path, reason);
}

export function isObj(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export function obj(v: unknown, path: string): Raw {
  if (!isObj(v)) invalid(path, 'expected an object');
  return v;
}

export function optObj(v: unknown, path: string): Raw | undefined {
  return v === undefined || v === null ? undefined : obj(v, path);
}

export function arr(v: unknown, path: string): readonly unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid(path, 'expected an array');
  return v;
}

export function str(v: unknown, path: string): string {
  if (typeof v !== 'string') invalid(path, 'expected a string');
  return v;
}

export function optStr(v: unknown, path: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, path);
}

export function num(v: unknown, path: string): number {
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  if (typeof v !== 'number' || !Number.isFinite(v)) invalid(path, 'expected a number');
  return v;
}

export function optNum(v: unknown, path: string): number | undefined {
  return v === undefined || v === null ? undefined : num(v, path);
}

/** A protobuf wrapper (`UInt32Value`, …) as `{ value }` (an absent value is the default); a bare scalar is accepted too. */
export function wrappedNum(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (isObj(v)) return v.value === undefined ? 0 : num(v.value, `${path}.value`);
  return num(v, path);
}

export function wrappedBool(v: unknown, path: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  const w = isObj(v) ? (v.value ?? false) : v;
  if (typeof w !== 'boolean') invalid(`${path}.value`, 'expected a boolean');
  return w;
}

/** A `google.protobuf.Duration` in milliseconds (`{seconds, nanos}` or proto-JSON `"1.5s"`). */
export function durationMs(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(v);
    if (!m) invalid(path, `invalid duration ${JSON.stringify(v)}`);
    return Number(m[1]) * 1000;
  }
  const o = obj(v, path);
  const seconds = o.seconds === undefined ? 0 : num(o.seconds, `${path}.seconds`);
  const nanos = o.nanos === undefined ? 0 : num(o.nanos, `${path}.nanos`);
  const ms = seconds * 1000 + nanos / 1e6;
  if (ms < 0) invalid(path, 'duration must not be negative');
  return ms;
}

const denominators: Readonly<Record<string, number>> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** A `type.v3.FractionalPercent` as a probability in [0, 1]. */
export function fractionalPercent(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const o = obj(v, path);
  const numerator = o.numerator === undefined ? 0 : num(o.numerator, `${path}.numerator`);
  const denName = o.denominator === undefined ? 'HUNDRED' : o.denominator;
  const den = typeof denName === 'number' ? [100, 10_000, 1_000_000][denName] : denominators[String(denName)];
  if (den === undefined) invalid(`${path}.denominator`, `unknown denominator ${String(denName)}`);
  if (numerator < 0) invalid(`${path}.numerator`, 'must not be negative');
  return Math.min(1, numerator / den);
}

/** A `type.v3.Percent` (`{ value: 0..100 }`) as a probability. */
export function percent(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const value = num(obj(v, path).value ?? 0, `${path}.value`);
  if (value < 0 || value > 100) invalid(`${path}.value`, 'must be within [0, 100]');
  return value / 100;
}

/** The inner message of an Any in canonical form, with its full type name. */
export function anyOf(v: unknown, path: string): { type: string; msg: Raw } {
  const o = obj(v, path);
  const t = o['@type'];
  if (typeof t !== 'string') {
    if (typeof o.type_url === 'string') invalid(path, `cannot read ${o.type_url}: its proto is not loaded`);
    invalid(path, 'expected a typed Any');
  }
  const { '@type': _t, ...msg } = o;
  return { type: t.slice(t.lastIndexOf('/') + 1), msg };
}
