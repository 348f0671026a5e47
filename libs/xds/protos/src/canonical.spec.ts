import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AviaryError } from '@aviary/errors';
import { ExtensionTypeUrl, MessageName, TypeUrl, typeNameOf } from '@aviary/xds-api';
import { lookUpAnysAdaptively } from './canonical';
import { canonicalMessage, encodeMessageOf, lookupType } from './index';
import { anyArbitrary, messageArbitraries, sentTypeNames } from './testing/arbitraries';
import { canonicalMessageBefore } from './testing/canonical-before';

/**
 * The planned `canonicalMessage` against the one it replaced (kept in testing/canonical-before.ts):
 * for every input the same canonical object (same keys in the same order, same holes, same
 * frozenness) or the same error (class, kind, code, message, details).
 */
type Outcome = { readonly value: unknown } | { readonly error: unknown };

function outcomeOf(fn: () => unknown): Outcome {
  try {
    return { value: fn() };
  } catch (error) {
    return { error };
  }
}

/** The first difference between two canonical objects, `undefined` when there is none. */
function differenceOf(a: unknown, b: unknown, path = '$'): string | undefined {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return Object.is(a, b) ? undefined : `${path}: ${String(a)} ≠ ${String(b)}`;
  }
  const [protoA, protoB] = [Object.getPrototypeOf(a) as object | null, Object.getPrototypeOf(b) as object | null];
  if (protoA !== protoB) {
    // A map key `__proto__` sets the map's prototype to the canonical value (as it always did).
    const shared = [Object.prototype, Array.prototype, null];
    if (shared.includes(protoA) || shared.includes(protoB)) return `${path}: prototypes differ`;
    const d = differenceOf(protoA, protoB, `${path}.__proto__`);
    if (d) return d;
  }
  if (Object.isFrozen(a) !== Object.isFrozen(b)) return `${path}: frozen ${Object.isFrozen(a)} ≠ ${Object.isFrozen(b)}`;
  const keysA = Reflect.ownKeys(a);
  const keysB = Reflect.ownKeys(b);
  if (keysA.join('\u0000') !== keysB.join('\u0000')) return `${path}: keys [${keysA.join(', ')}] ≠ [${keysB.join(', ')}]`;
  for (const k of keysA) {
    const d = differenceOf((a as Record<PropertyKey, unknown>)[k], (b as Record<PropertyKey, unknown>)[k], `${path}.${String(k)}`);
    if (d) return d;
  }
  return undefined;
}

/** Where two canonical forms hold the very same object (an Any from the cache). */
function sharedPaths(a: unknown, b: unknown, path = '$', out: string[] = []): string[] {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return out;
  if (a === b) out.push(path);
  else for (const k of Object.keys(a)) sharedPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out);
  return out;
}

function errorShape(error: unknown): unknown {
  if (error instanceof AviaryError) return { class: 'AviaryError', kind: error.kind, code: error.code, message: error.message, details: error.details };
  if (error instanceof Error) return { class: error.constructor.name, message: error.message };
  return { thrown: error };
}

function expectSameOutcome(type: protobuf.Type, input: unknown, path?: string): void {
  const before = outcomeOf(() => canonicalMessageBefore(type, input, path));
  const after = outcomeOf(() => canonicalMessage(type, input, path));
  if ('error' in before || 'error' in after) {
    expect('error' in after ? errorShape(after.error) : after, 'error').toEqual('error' in before ? errorShape(before.error) : before);
  } else {
    expect(differenceOf(after.value, before.value)).toBeUndefined();
  }
}

/** A deep copy of plain objects (also without a prototype, as fast-check makes some) and arrays (holes kept); other values are shared. */
function copyOf(value: unknown): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = new Array<unknown>(value.length);
    value.forEach((v, i) => (out[i] = copyOf(v)));
    return out;
  }
  const prototype: unknown = typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : undefined;
  if (prototype === Object.prototype || prototype === null) {
    const out = Object.create(prototype as object | null) as Record<string, unknown>;
    for (const k of Object.keys(value as object)) Object.defineProperty(out, k, { value: copyOf((value as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

/** Values that a field of some type refuses (or, for another type, accepts). */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, NaN, Infinity, -Infinity, -0, 0.5, 0.1, 1e40, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, -1, 2 ** 53, -(2 ** 53), '12', '-3', '1e3', '', 'x', 'STATIC', 'HTTP2', true, [], {}),
  fc.constantFrom([null], [1, null], ['a'], [{}], { a: null }, { a: 1 }, { '@type': 'type.googleapis.com/aviary.test.Nope' }, { '@type': 'envoy.config.core.v3.Address' }, { '@type': null }),
  fc.constantFrom({ type_url: ExtensionTypeUrl.TcpProxy, value: 'AAAA' }, { type_url: ExtensionTypeUrl.TcpProxy, value: new Uint8Array([0xff, 0xff]) }, { type_url: 7 }, { type_url: ExtensionTypeUrl.Router, value: 3 }),
  fc.constantFrom({ toNumber: () => 5 }, { toNumber: () => -5 }, { toNumber: () => 2 ** 60 }),
  fc.bigInt(),
  fc.uint8Array({ maxLength: 4 }),
  fc.anything({ maxDepth: 2 }),
);

/** Keys no message has, or that a prototype has: each must fail the same way. */
const oddKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '@type', 'type_url', 'value', 'nameX', '0', 'statPrefix', 'typedConfig', 'filterChains', 'lbPolicy'),
  fc.string({ maxLength: 6 }),
);

interface Mutation {
  readonly steps: readonly number[];
  readonly kind: 'replace' | 'add' | 'hole';
  readonly key: string;
  readonly value: unknown;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  steps: fc.array(fc.nat(), { maxLength: 8 }),
  kind: fc.constantFrom('replace', 'add', 'hole'),
  key: oddKey,
  value: oddValue,
});

/** Applies `m` to a copy of `message`: walks down by `steps` (as far as it can), then changes one thing there. */
function mutated(message: unknown, m: Mutation): unknown {
  const root = copyOf(message);
  let node: unknown = root;
  for (const step of m.steps) {
    if (typeof node !== 'object' || node === null || node instanceof Uint8Array) break;
    const keys = Object.keys(node);
    const next = keys.length === 0 ? undefined : (node as Record<string, unknown>)[keys[step % keys.length]!];
    if (typeof next !== 'object' || next === null || next instanceof Uint8Array) break;
    node = next;
  }
  if (typeof node !== 'object' || node === null || node instanceof Uint8Array) return root;
  const target = node as Record<string, unknown>;
  const keys = Object.keys(target);
  const at = keys.length === 0 ? undefined : keys[(m.steps.at(-1) ?? 0) % keys.length]!;
  if (m.kind === 'hole' && Array.isArray(target) && at !== undefined) {
    target.length += 1;
    delete target[Number(at)];
  } else if (m.kind === 'replace' && at !== undefined) {
    target[at] = m.value;
  } else if (!Array.isArray(target)) {
    Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

const typeUrlOfName = (name: string): string => `type.googleapis.com/${name}`;

/** Anys beyond the canonical ones: an Any in an Any, packed known types (well-formed or not), unloaded and malformed type URLs. */
const oddAny: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  anyArbitrary,
  anyArbitrary.map((inner) => ({ '@type': typeUrlOfName('google.protobuf.Any'), ...inner })),
  fc.record({ stat_prefix: fc.string(), cluster: fc.string() }).map((m) => ({ type_url: ExtensionTypeUrl.TcpProxy, value: encodeMessageOf(typeNameOf(ExtensionTypeUrl.TcpProxy), m) })),
  fc.record({ stat_prefix: fc.string() }).map((m) => ({ type_url: ExtensionTypeUrl.TcpProxy, value: Buffer.from(encodeMessageOf(typeNameOf(ExtensionTypeUrl.TcpProxy), m)).toString('base64') })),
  fc.uint8Array({ maxLength: 12 }).map((value) => ({ type_url: ExtensionTypeUrl.Router, value })),
  fc.constantFrom<Record<string, unknown>>({ '@type': 'type.googleapis.com/' }, { '@type': 'envoy.Nope' }, { '@type': typeUrlOfName('aviary.test.Nope'), a: 1 }, { type_url: ExtensionTypeUrl.Router, extra: 1 }, {}),
);

const canonicalArbitrary = messageArbitraries();
const oddArbitrary = messageArbitraries(oddAny);

describe('canonicalMessage with per-type plans, against the one before them', () => {
  // The one before looks every Any up by its JSON; so does this one here, so both freeze and share alike.
  beforeAll(() => lookUpAnysAdaptively(false));
  afterAll(() => lookUpAnysAdaptively(true));

  it.each(sentTypeNames)('returns the same canonical %s for random messages, also as protobufjs decodes them', (typeName) => {
    const type = lookupType(typeName);
    fc.assert(
      fc.property(canonicalArbitrary(type, 3), (raw) => {
        expectSameOutcome(type, raw);
        expectSameOutcome(type, type.decode(encodeMessageOf(typeName, raw)));
      }),
      { numRuns: 150 },
    );
  });

  it.each(sentTypeNames)('returns the same canonical %s or throws the same error for random changes to random messages', (typeName) => {
    const type = lookupType(typeName);
    fc.assert(
      fc.property(oddArbitrary(type, 3), mutation, fc.option(fc.constantFrom('Listener', 'x.y', '')), (raw, m, path) => {
        expectSameOutcome(type, mutated(raw, m), path ?? undefined);
      }),
      { numRuns: 300 },
    );
  });

  const wrappers = ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map((t) => `google.protobuf.${t}Value`);
  it.each(wrappers)('returns the same or throws the same error for any value of a %s', (typeName) => {
    const type = lookupType(typeName);
    fc.assert(
      fc.property(fc.oneof(oddValue, fc.double(), fc.integer(), fc.maxSafeInteger().map(String), fc.string()), (value) => expectSameOutcome(type, { value })),
      { numRuns: 200 },
    );
  });

  it('throws the same errors for Anys at the top, as unpackAny passes them', () => {
    const type = lookupType('google.protobuf.Any');
    fc.assert(
      fc.property(oddAny, mutation, (any, m) => {
        expectSameOutcome(type, any, 'Any');
        expectSameOutcome(type, mutated(any, m), 'Any');
      }),
      { numRuns: 300 },
    );
  });

  it('returns the same for non-objects and for messages without a field', () => {
    const listener = lookupType(typeNameOf(TypeUrl.Listener));
    for (const input of [undefined, null, 1, 'x', [], [{}], new Uint8Array(1), {}, { name: undefined }, { filter_chains: [] }, { metadata: { filter_metadata: {} } }]) {
      expectSameOutcome(listener, input);
    }
    expectSameOutcome(lookupType(MessageName.DiscoveryRequest), { node: { id: 'n', metadata: { fields: { a: { string_value: 'b' } } } }, resource_names: ['x'] });
  });

  const goldenDir = fileURLToPath(new URL('../../translate/src/__golden__/', import.meta.url));
  const typeUrls = { listeners: TypeUrl.Listener, routes: TypeUrl.RouteConfiguration, clusters: TypeUrl.Cluster, endpoints: TypeUrl.ClusterLoadAssignment, secrets: TypeUrl.Secret } as const;
  const goldens = readdirSync(goldenDir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((file) => {
      const golden = JSON.parse(readFileSync(`${goldenDir}${file}`, 'utf8')) as Record<string, { name: string; resource: object }[]>;
      return Object.entries(typeUrls).flatMap(([key, url]) => (golden[key] ?? []).map(({ name, resource }) => ({ label: `${file} ${key} ${name}`, type: lookupType(typeNameOf(url)), resource })));
    });

  it('returns the same canonical form for every resource of the translate goldens, first and again, sharing the same cached Anys', () => {
    expect(goldens.length).toBeGreaterThan(100);
    for (const { label, type, resource } of goldens) {
      const inputs = [copyOf(resource), copyOf(resource), resource, resource];
      const before = inputs.map((input) => canonicalMessageBefore(type, input));
      const after = inputs.map((input) => canonicalMessage(type, input));
      for (let i = 0; i < inputs.length; i++) {
        expect(differenceOf(after[i], before[i]), label).toBeUndefined();
        // What was shared before is shared still; forms of one input now also share its canonical objects.
        for (let j = 0; j < i; j++) expect(sharedPaths(after[j], after[i]), label).toEqual(expect.arrayContaining(sharedPaths(before[j], before[i])));
      }
    }
  });

  it('returns the input itself where it is canonical already, copies only along the paths that are not, and never freezes it', () => {
    const frozenPaths = (value: unknown, path = '$', out: string[] = []): string[] => {
      if (typeof value !== 'object' || value === null) return out;
      if (Object.isFrozen(value)) out.push(path);
      for (const k of Object.keys(value)) frozenPaths((value as Record<string, unknown>)[k], `${path}.${k}`, out);
      return out;
    };
    let whole = 0;
    for (const { label, type, resource } of goldens) {
      const input = copyOf(resource);
      const canonical = canonicalMessage(type, input);
      expect(frozenPaths(input), label).toEqual([]);
      if (differenceOf(canonical, input) === undefined) {
        expect(canonical, label).toBe(input);
        whole++;
      }
    }
    // The others hold an Any the cache had already (frozen): a copy, as the cache's is shared.
    expect(whole).toBeGreaterThan(100);

    const cluster = lookupType(typeNameOf(TypeUrl.Cluster));
    const input: { [k: string]: unknown; load_assignment: { cluster_name: string; endpoints: { lb_endpoints?: unknown[]; priority?: number }[] } } = {
      name: 'c',
      type: 'EDS',
      eds_cluster_config: { service_name: 'c' },
      load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ health_status: 1 }, { health_status: 'HEALTHY' }] }, { priority: 1 }] },
      metadata: { filter_metadata: { a: { fields: { x: { string_value: 'y' } } }, b: { fields: { x: { number_value: 1 } } } } },
    };
    const canonical = canonicalMessage(cluster, input) as typeof input;
    expect(canonical).not.toBe(input);
    expect(canonical.load_assignment.endpoints[0]!.lb_endpoints![0]).toEqual({ health_status: 'HEALTHY' });
    // Beside the one enum given as a number, everything is the input's own.
    expect(canonical.eds_cluster_config).toBe(input.eds_cluster_config);
    expect(canonical.metadata).toBe(input.metadata);
    expect(canonical.load_assignment.endpoints[0]!.lb_endpoints![1]).toBe(input.load_assignment.endpoints[0]!.lb_endpoints![1]);
    expect(canonical.load_assignment.endpoints[1]).toBe(input.load_assignment.endpoints[1]);
    expect(input.load_assignment.endpoints[0]!.lb_endpoints![0]).toEqual({ health_status: 1 });
    expect(frozenPaths(input)).toEqual([]);
  });

  it('throws the same errors for random changes to golden resources', () => {
    fc.assert(
      fc.property(fc.nat(goldens.length - 1), mutation, (i, m) => {
        const { type, resource } = goldens[i]!;
        expectSameOutcome(type, mutated(resource, m));
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('looking Anys up by their JSON, per type', () => {
  const listener = lookupType(typeNameOf(TypeUrl.Listener));
  const router = { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' };
  const hcmType = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  /** A listener whose HttpConnectionManager is its own (stat prefix `n`) and whose router filter repeats. */
  const withManager = (n: string) => ({
    name: n,
    filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': hcmType, stat_prefix: n, http_filters: [{ name: 'router', typed_config: { ...router } }] } }] }],
  });
  const managerOf = (l: unknown) => (l as { filter_chains: { filters: { typed_config: Record<string, unknown> }[] }[] }).filter_chains[0]!.filters[0]!.typed_config;
  const routerOf = (l: unknown) => (managerOf(l).http_filters as { typed_config: unknown }[])[0]!.typed_config;

  it("stops producing the JSON of a type's Anys after 8 misses in a row, probes one in 32, and keeps sharing the types that repeat", () => {
    lookUpAnysAdaptively(true);
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      const managersStringified = () => stringify.mock.calls.filter(([v]) => (v as { '@type'?: unknown })['@type'] === hcmType).length;
      const forms = Array.from({ length: 8 + 31 }, (_, i) => canonicalMessage(listener, withManager(`a-${i}`)));
      expect(managersStringified()).toBe(8);
      // Every form is right, and those not looked up are not frozen (as one too large to cache).
      forms.forEach((f, i) => expect(f).toEqual(withManager(`a-${i}`)));
      expect(Object.isFrozen(managerOf(forms[7]))).toBe(true);
      expect(Object.isFrozen(managerOf(forms[8]))).toBe(false);
      // The router repeats in every one: looked up each time, one shared frozen form.
      expect(new Set(forms.map(routerOf)).size).toBe(1);
      expect(Object.isFrozen(routerOf(forms[0]))).toBe(true);
      // The 32nd after the misses is looked up: a hit (a manager seen before) makes every one looked up again.
      const probe = canonicalMessage(listener, withManager('a-0'));
      expect(managersStringified()).toBe(9);
      expect(managerOf(probe)).toBe(managerOf(forms[0]));
      canonicalMessage(listener, withManager('b-0'));
      expect(managersStringified()).toBe(10);
    } finally {
      stringify.mockRestore();
      lookUpAnysAdaptively(true);
    }
  });
});
