import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExtensionTypeUrl, TypeUrl } from '@aviary/xds-api';
import { canonicalMessage, encodeCanonical, encodeCanonicalAfter, encodeMessageOf, lookupType, typeNameOf } from './index';
import type { CanonicalMessage } from './index';
import { messageArbitraries, sentTypeNames } from './testing/arbitraries';
import { encodeCanonicalBefore } from './testing/canonical-writer-before';

const messageArbitrary = messageArbitraries();

/** encodeCanonical's bytes of `raw` made canonical, checked against encodeMessageOf's; returns them as hex. */
function encoded(typeName: string, raw: Record<string, unknown>): string {
  const canonical = canonicalMessage(lookupType(typeName), raw);
  const bytes = Buffer.from(encodeCanonical(typeName, canonical));
  expect(bytes.toString('hex')).toBe(Buffer.from(encodeMessageOf(typeName, canonical)).toString('hex'));
  return bytes.toString('hex');
}

/**
 * encodeCanonical's bytes of a value that is not canonical but that the writer on protobufjs's
 * Writer took (64-bit values as strings or Long-like objects, bytes as Uint8Array or loose
 * base64), checked against that writer's; returns them as hex.
 */
function encodedAsBefore(typeName: string, value: CanonicalMessage): string {
  const bytes = Buffer.from(encodeCanonical(typeName, value)).toString('hex');
  expect(bytes).toBe(Buffer.from(encodeCanonicalBefore(typeName, value)).toString('hex'));
  return bytes;
}

const listenerName = typeNameOf(TypeUrl.Listener);
const clusterName = typeNameOf(TypeUrl.Cluster);

/** `{ fields: { k: { struct_value: … } } }`, `depth` levels deep, a string at the bottom. */
function nestedStruct(depth: number, leaf: string): Record<string, unknown> {
  let value: Record<string, unknown> = { string_value: leaf };
  for (let i = 0; i < depth; i++) value = { struct_value: { fields: { [`k${i}`]: value, [`n${i}`]: { number_value: i } } } };
  return value.struct_value as Record<string, unknown>;
}

/** A listener whose HTTP filter chain carries an HCM with `hosts` virtual hosts: an Any with many sizes of its own. */
function listenerWithRoutes(name: string, hosts: number): Record<string, unknown> {
  const hcm = {
    '@type': ExtensionTypeUrl.HttpConnectionManager,
    stat_prefix: name,
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ExtensionTypeUrl.Router } }],
    route_config: {
      name,
      virtual_hosts: Array.from({ length: hosts }, (_, i) => ({ name: `vh${i}`, domains: [`h${i}.${name}`], routes: [{ match: { prefix: '/' }, route: { cluster: `c${i}` } }] })),
    },
  };
  const tcp = { '@type': ExtensionTypeUrl.TcpProxy, stat_prefix: name, cluster: 'c' };
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
    filter_chains: [
      { name: 'before', filters: [{ name: 'tcp', typed_config: tcp }] },
      { name: 'http', filters: [{ name: 'hcm', typed_config: hcm }] },
      { name: 'after', filter_chain_match: { server_names: ['a', 'b'] }, filters: [{ name: 'tcp', typed_config: tcp }] },
    ],
    listener_filters: [{ name: 'tls', typed_config: { '@type': ExtensionTypeUrl.TlsInspector } }],
  };
}

describe('encodeCanonical', () => {
  it.each(sentTypeNames)('writes the bytes encodeMessageOf writes, for random canonical %s messages', (typeName) => {
    const type = lookupType(typeName);
    fc.assert(
      fc.property(messageArbitrary(type, 3), (raw) => {
        const canonical = canonicalMessage(type, raw);
        expect(Buffer.from(encodeCanonical(typeName, canonical)).equals(Buffer.from(encodeMessageOf(typeName, canonical)))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('writes a nested Any shared by several resources the same each time', () => {
    const typed = canonicalMessage(lookupType('google.protobuf.Any'), { '@type': ExtensionTypeUrl.TcpProxy, stat_prefix: 'x', cluster: 'c' });
    const listener = (name: string) => ({ name, filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: typed }] }] });
    for (const l of ['a', 'b']) expect(Buffer.from(encodeCanonical(listenerName, listener(l))).equals(Buffer.from(encodeMessageOf(listenerName, listener(l))))).toBe(true);
  });

  // Strings shorter than 40 UTF-16 units are measured and written in JS, longer ones by Node; a
  // lone surrogate comes out as its CESU-8 bytes from the first and as U+FFFD from the second.
  it.each([
    ['empty', ''],
    ['two-byte', 'é'],
    ['three-byte', '€'],
    ['astral', 'a😀b'],
    ['39 ASCII units', 'x'.repeat(39)],
    ['40 ASCII units', 'x'.repeat(40)],
    ['39 units of astral pairs and ASCII', `${'😀'.repeat(19)}x`],
    ['40 units of astral pairs', '😀'.repeat(20)],
    ['a two-byte length', '€'.repeat(50)],
    ['a three-byte length', 'ü'.repeat(10_000)],
    ['a lone high surrogate', '\ud800'],
    ['a lone low surrogate between ASCII', 'a\udc00b'],
    ['39 lone surrogates', '\ud800'.repeat(39)],
    ['40 lone surrogates', '\ud800'.repeat(40)],
  ])('writes a string with %s as UTF-8, as a field, a map key and a map value', (_, s) => {
    encoded(clusterName, { name: s, alt_stat_name: `${s}!` });
    encoded('google.protobuf.Struct', { fields: { [s]: { string_value: s } } });
  });

  it('writes bytes from base64 (empty, padded, long) and, as the writer before did, from Uint8Arrays and loose base64', () => {
    const secret = (inline_bytes: unknown) => ({ name: 's', tls_certificate: { certificate_chain: { inline_bytes } } });
    const long = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 255));
    for (const b64 of ['', 'AA==', 'AAE=', 'AAEC', long.toString('base64')]) encoded('envoy.extensions.transport_sockets.tls.v3.Secret', secret(b64));
    for (const bytes of [new Uint8Array(0), new Uint8Array([1, 2, 3]), long, 'AA EC\nAw Q=', 'AAECAw', '-_-_', 'A']) {
      encodedAsBefore('envoy.extensions.transport_sockets.tls.v3.Secret', secret(bytes));
    }
    expect(encodedAsBefore('google.protobuf.BytesValue', { value: 'AA EC\nAw Q=' })).toBe('0a050001020304');
  });

  it('writes 32-bit integers over their whole range: uint32 above 2^31, a negative int32 as a 10-byte varint, sint32, fixed32', () => {
    expect(encoded('google.protobuf.UInt32Value', { value: 0xffffffff })).toBe('08ffffffff0f');
    expect(encoded('google.protobuf.UInt32Value', { value: 2 ** 31 })).toBe('088080808008');
    expect(encoded('google.protobuf.UInt32Value', { value: 0 })).toBe('0800');
    expect(encoded('google.protobuf.Int32Value', { value: -1 })).toBe('08ffffffffffffffffff01');
    expect(encoded('google.protobuf.Int32Value', { value: -0x80000000 })).toBe('0880808080f8ffffffff01');
    expect(encoded('google.protobuf.Int32Value', { value: 0x7fffffff })).toBe('08ffffffff07');
    encoded('validate.Int32Rules', { const: -5, in: [-1, 0, 127, 128, 16384, -0x80000000] });
    encoded('validate.SInt32Rules', { const: -1, in: [0, -1, 1, 0x7fffffff, -0x80000000] });
    encoded('validate.Fixed32Rules', { const: 0xffffffff, in: [0, 1, 2 ** 31] });
    encoded('validate.SFixed32Rules', { const: -1, in: [-0x80000000, 0x7fffffff] });
    encoded('validate.UInt32Rules', { const: 0xffffffff, in: [2 ** 31, 2 ** 32 - 2] });
  });

  it('writes 64-bit integers from numbers (the safe range) and, as the writer before did, from decimal strings and Long-like objects', () => {
    expect(encoded('google.protobuf.Int64Value', { value: -1 })).toBe('08ffffffffffffffffff01');
    expect(encoded('google.protobuf.UInt64Value', { value: Number.MAX_SAFE_INTEGER })).toBe('08ffffffffffffff0f');
    for (const n of [0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]) {
      encoded('google.protobuf.Int64Value', { value: n });
      encoded('validate.SInt64Rules', { const: n, in: [n, -n] });
      encoded('validate.SFixed64Rules', { const: n, in: [n, -n] });
      if (n >= 0) encoded('validate.Fixed64Rules', { const: n, in: [n] });
      if (n >= 0) encoded('validate.UInt64Rules', { const: n, in: [n] });
    }
    expect(encodedAsBefore('google.protobuf.UInt64Value', { value: '18446744073709551615' })).toBe('08ffffffffffffffffff01');
    expect(encodedAsBefore('google.protobuf.Int64Value', { value: '-9223372036854775808' })).toBe('0880808080808080808001');
    expect(encodedAsBefore('google.protobuf.UInt64Value', { value: { low: -1, high: 0x7fffffff, unsigned: true } })).toBe('08ffffffffffffffff7f');
    expect(encodedAsBefore('validate.SInt64Rules', { const: '-9223372036854775808', in: ['9223372036854775807', '0'] })).toBe('08ffffffffffffffffff0130feffffffffffffffff013000');
    expect(encodedAsBefore('validate.Fixed64Rules', { const: '18446744073709551615', in: [{ low: 1, high: 2 }] })).toBe('09ffffffffffffffff310100000002000000');
  });

  it('writes floats and doubles bit for bit (NaN, -0, the extremes) and bools set to false', () => {
    encoded('validate.FloatRules', { const: Math.fround(0.1), in: [NaN, -0, Infinity, -Infinity, 3.4028234663852886e38, 1.401298464324817e-45] });
    encoded('validate.DoubleRules', { const: -0, in: [NaN, Number.MAX_VALUE, Number.MIN_VALUE, -Infinity] });
    expect(encoded('google.protobuf.BoolValue', { value: false })).toBe('0800');
    expect(encoded('google.protobuf.DoubleValue', { value: 0 })).toBe('090000000000000000');
  });

  it('packs repeated numbers and enums (by name and number, a negative one as 10 bytes) and leaves an empty run out', () => {
    expect(encoded('envoy.config.route.v3.RetryPolicy', { retriable_status_codes: [0, 503, 0xffffffff] })).toBe('3a0800f703ffffffff0f');
    expect(encoded('envoy.config.core.v3.HealthStatusSet', { statuses: ['HEALTHY', 'DRAINING', 7, -1] })).toBe('0a0d010307ffffffffffffffffff01');
    expect(encoded('google.protobuf.SourceCodeInfo.Location', { path: [-1, 1, 300], span: [] })).toBe('0a0dffffffffffffffffff0101ac02');
    // Canonical form leaves empty arrays out; the writer still writes no run for one.
    expect(encodedAsBefore('google.protobuf.SourceCodeInfo.Location', { path: [1], span: [] })).toBe('0a0101');
  });

  it('writes maps: message values (empty ones too), Any values, int64 keys given as strings', () => {
    encoded(clusterName, {
      name: 'c',
      metadata: {
        filter_metadata: { empty: {}, 'envoy.lb': { fields: { k: { struct_value: {} }, l: { list_value: { values: [{ bool_value: false }, {}] } } } } },
        typed_filter_metadata: { x: { '@type': ExtensionTypeUrl.Router } },
      },
      typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': ExtensionTypeUrl.HttpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } } },
    });
    encoded('envoy.data.accesslog.v3.HTTPRequestProperties', { request_headers: { a: '', '': 'b', ['é'.repeat(40)]: '😀' } });
    const info = { positions: { '1': 5, '300': -1, '-3': 0x7fffffff }, macro_calls: { '7': {}, '9007199254740991': { const_expr: { int64_value: -2 } } } };
    expect(encodedAsBefore('google.api.expr.v1alpha1.SourceInfo', info)).toBe(Buffer.from(encodeMessageOf('google.api.expr.v1alpha1.SourceInfo', info)).toString('hex'));
  });

  it('writes Anys nested in Anys, repeated, shared within a message, of an unknown type and with an empty inner message', () => {
    const router = { '@type': ExtensionTypeUrl.Router };
    const hcm = { '@type': ExtensionTypeUrl.HttpConnectionManager, stat_prefix: 'in', http_filters: [{ name: 'a', typed_config: router }, { name: 'b', typed_config: router }] };
    encoded(listenerName, {
      name: 'nested',
      filter_chains: [{ filters: [{ name: 'hcm', typed_config: hcm }] }, { filters: [{ name: 'hcm', typed_config: hcm }, { name: 'unknown', typed_config: { type_url: 'type.googleapis.com/aviary.test.Unknown', value: 'AAEC' } }] }],
    });
  });

  it('encodes an Any met for the first time inside a message (a nested encode) between sizes of the outer message, also when the sizes grow', () => {
    // Unique names: canonicalMessage caches small Anys by JSON, and the writer their bytes.
    const unique = `reentry-${Date.now()}-${Math.random()}`;
    for (const [i, hosts] of [1, 5_000].entries()) {
      const raw = listenerWithRoutes(`${unique}-${i}`, hosts);
      const type = lookupType(listenerName);
      const first = Buffer.from(encodeCanonical(listenerName, canonicalMessage(type, raw)));
      expect(first.equals(Buffer.from(encodeCanonicalBefore(listenerName, canonicalMessage(type, raw))))).toBe(true);
      expect(first.equals(Buffer.from(encodeCanonical(listenerName, canonicalMessage(type, raw))))).toBe(true);
    }
  });

  it('writes deep nesting (lengths of several bytes at every level) and more sizes than the first stack holds', () => {
    encoded('google.protobuf.Struct', nestedStruct(40, 'é'.repeat(100)));
    // Deeper than protobufjs's fromObject (encodeMessageOf) goes.
    encodedAsBefore('google.protobuf.Struct', nestedStruct(300, 'é'.repeat(100)));
    const endpoints = Array.from({ length: 6_000 }, (_, i) => ({ endpoint: { address: { socket_address: { address: `10.0.${i >> 8}.${i & 255}`, port_value: 8080 } } } }));
    encoded(typeNameOf(TypeUrl.ClusterLoadAssignment), { cluster_name: 'big', endpoints: [{ lb_endpoints: endpoints }] });
  });

  it('leaves the headroom asked for the counted size before the same bytes (encodeCanonicalAfter)', () => {
    const typeName = typeNameOf(TypeUrl.Listener);
    const type = lookupType(typeName);
    fc.assert(
      fc.property(messageArbitrary(type, 3), fc.nat(40), (raw, extra) => {
        const canonical = canonicalMessage(type, raw);
        const expected = Buffer.from(encodeCanonical(typeName, canonical));
        const asked: number[] = [];
        const buf = encodeCanonicalAfter(typeName, canonical, (size) => (asked.push(size), size % 7) + extra);
        expect(asked).toEqual([expected.length]);
        expect(buf.length).toBe((expected.length % 7) + extra + expected.length);
        expect(buf.subarray(buf.length - expected.length).equals(expected)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('hands out a buffer of its own each time', () => {
    const a = encodeCanonical(clusterName, { name: 'a' });
    const copy = Buffer.from(a);
    encodeCanonical(clusterName, { name: 'b' });
    expect(Buffer.from(a).equals(copy)).toBe(true);
  });
});
