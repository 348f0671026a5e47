import { describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { ExtensionTypeUrl, MessageName, typeUrlOf } from '@aviary/xds-api';
import {
  TypeUrl,
  assertRoundTrip,
  decodeResource,
  encodeResource,
  jsToStruct,
  lookupType,
  packAny,
  structToJs,
  unpackAny,
} from './index';

const HCM = ExtensionTypeUrl.HttpConnectionManager;
const ROUTER = ExtensionTypeUrl.Router;

const listener = {
  name: 'echo.default.svc.cluster.local:9080',
  api_listener: {
    api_listener: {
      '@type': HCM,
      rds: { route_config_name: 'echo-route', config_source: { ads: {}, resource_api_version: 'V3' } },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
    },
  },
};

function errorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isAviaryError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an error');
}

describe('xds-protos', () => {
  it('loads the v3 resource types and the discovery messages', () => {
    for (const url of Object.values(TypeUrl)) expect(lookupType(url.split('/')[1]!).fullName).toBe(`.${url.split('/')[1]}`);
    expect(lookupType(MessageName.DeltaDiscoveryResponse).fields.removed_resources).toBeDefined();
  });

  it('round-trips a listener with nested Anys in canonical form', () => {
    const bytes = assertRoundTrip(TypeUrl.Listener, listener);
    expect(decodeResource(TypeUrl.Listener, bytes)).toEqual(listener);
  });

  it('keeps explicit defaults, enums by number become names, int64 become numbers', () => {
    const cluster = { name: 'c', type: 3, lb_policy: 'ROUND_ROBIN', connect_timeout: { seconds: '5' }, eds_cluster_config: { eds_config: { ads: {} } } };
    const decoded = decodeResource(TypeUrl.Cluster, encodeResource(TypeUrl.Cluster, cluster));
    expect(decoded).toEqual({ name: 'c', type: 'EDS', lb_policy: 'ROUND_ROBIN', connect_timeout: { seconds: 5 }, eds_cluster_config: { eds_config: { ads: {} } } });
  });

  it('rejects unknown fields instead of dropping them, with the path and a camelCase hint', () => {
    const err = errorOf(() => encodeResource(TypeUrl.Cluster, { name: 'c', lbPolicy: 'ROUND_ROBIN' }));
    expect(err.code).toBe('XDS_RESOURCE_INVALID');
    expect(err.message).toContain('Cluster.lbPolicy');
    expect(err.message).toContain('lb_policy');
    const nested = errorOf(() => packAny(HCM, { rds: { route_config_name: 'r', bogus: 1 } }));
    expect(nested.message).toContain('.rds.bogus');
  });

  it('rejects wrong scalar types, unknown enum names and Anys without the type URL prefix', () => {
    expect(errorOf(() => encodeResource(TypeUrl.Cluster, { name: 7 })).message).toContain('expected a string');
    expect(errorOf(() => encodeResource(TypeUrl.Cluster, { name: 'c', lb_policy: 'FASTEST' })).message).toContain('FASTEST');
    const bad = { name: 'l', api_listener: { api_listener: { '@type': 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager' } } };
    expect(errorOf(() => encodeResource(TypeUrl.Listener, bad)).message).toContain('type.googleapis.com/');
  });

  it('packs and unpacks Anys; an already packed Any is verified and expanded', () => {
    const packed = packAny('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', { stat_prefix: 'x' });
    expect(packed.type_url).toBe(HCM);
    expect(unpackAny(packed)).toEqual({ typeUrl: HCM, message: { stat_prefix: 'x' } });
    const l = { name: 'l', api_listener: { api_listener: packed } };
    expect(decodeResource(TypeUrl.Listener, encodeResource(TypeUrl.Listener, l))).toEqual({ name: 'l', api_listener: { api_listener: { '@type': HCM, stat_prefix: 'x' } } });
  });

  it('converts Struct metadata both ways', () => {
    const js = { NAMESPACE: 'default', LABELS: { app: 'echo' }, n: 1, ok: true, list: ['a'] };
    expect(structToJs(jsToStruct(js))).toEqual(js);
  });
});

describe('Struct in the root', () => {
  it('uses proto field names (not protobufjs camelCase) so metadata round-trips', () => {
    const node = { id: 'n', metadata: jsToStruct({ GENERATOR: 'grpc', LABELS: { app: 'echo' } }) };
    const bytes = encodeResource(typeUrlOf(MessageName.Node), node);
    const decoded = decodeResource(typeUrlOf(MessageName.Node), bytes);
    expect(structToJs(decoded.metadata as Parameters<typeof structToJs>[0])).toEqual({ GENERATOR: 'grpc', LABELS: { app: 'echo' } });
  });
});

describe('nested Anys repeated across resources', () => {
  const TCP = ExtensionTypeUrl.TcpProxy;
  const chain = (cluster: string) => ({ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP, stat_prefix: cluster, cluster } }] });

  it('encode the same as when seen for the first time, and stay verified', () => {
    const first = encodeResource(TypeUrl.Listener, { name: 'a', filter_chains: [chain('x'), chain('y')] });
    const again = encodeResource(TypeUrl.Listener, { name: 'a', filter_chains: [chain('x'), chain('y')] });
    expect(Buffer.from(again).equals(Buffer.from(first))).toBe(true);
    expect(decodeResource(TypeUrl.Listener, again)).toEqual({ name: 'a', filter_chains: [chain('x'), chain('y')] });
    const bad = { name: 'a', filter_chains: [{ filters: [{ name: 'f', typed_config: { '@type': TCP, stat_prefix: 'x', clusterr: 'x' } }] }] };
    expect(() => encodeResource(TypeUrl.Listener, bad)).toThrow(/unknown field/);
    expect(() => encodeResource(TypeUrl.Listener, bad)).toThrow(/unknown field/);
  });

  it('one Any object in two places, too large for the cache by JSON, encodes as two copies would, and an invalid one is refused', () => {
    const routes = Array.from({ length: 40 }, (_, i) => ({ name: `r${i}`, match: { prefix: `/${'x'.repeat(40)}/${i}` }, route: { cluster: `outbound|80||svc-${i}.default.svc.cluster.local` } }));
    const hcm = () => ({ '@type': HCM, stat_prefix: 'inbound_0.0.0.0_8080', route_config: { name: 'inbound|8080||', virtual_hosts: [{ name: 'v', domains: ['*'], routes }] } });
    expect(JSON.stringify(hcm()).length).toBeGreaterThan(2048);
    const shared = [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm() }];
    const sharing = encodeResource(TypeUrl.Listener, { name: 'l', filter_chains: [{ name: 'mtls', filters: shared }, { name: 'plaintext', filters: shared }] });
    const copies = encodeResource(TypeUrl.Listener, {
      name: 'l',
      filter_chains: [
        { name: 'mtls', filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm() }] },
        { name: 'plaintext', filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm() }] },
      ],
    });
    expect(Buffer.from(sharing).equals(Buffer.from(copies))).toBe(true);
    const bad = { '@type': HCM, stat_prefixx: 'p' };
    const chains = [{ filters: [{ name: 'f', typed_config: bad }] }, { filters: [{ name: 'f', typed_config: bad }] }];
    expect(() => encodeResource(TypeUrl.Listener, { name: 'b', filter_chains: chains })).toThrow(/unknown field/);
    expect(() => encodeResource(TypeUrl.Listener, { name: 'b', filter_chains: chains })).toThrow(/unknown field/);
  });
});
