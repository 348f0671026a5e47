import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { envoyBootstrap, parseHostPort, parseHostPorts, pilotTlsSetting, XDS_RECONNECT, type BootstrapInput } from './bootstrap';
import { findEnvoy } from '@aviary/config';
import { agentNode } from './node';

const run = promisify(execFile);
const ENVOY = findEnvoy(process.env['AVIARY_ENVOY_PATH']) ?? '';

const cases: Record<string, BootstrapInput> = {
  'router-local': {
    node: agentNode({ mode: 'router', platform: 'local', name: 'istio-ingressgateway', namespace: 'istio-system', serviceAccount: 'istio-ingressgateway-service-account', labels: 'istio=ingressgateway,app=istio-ingressgateway', podIp: '127.0.0.1', trustDomain: 'cluster.local' }),
    pilot: { host: '127.0.0.1', port: 15010 },
    xdsProtocol: 'delta',
    adminPort: 15001,
    sdsSocket: '/tmp/aviary-agent/sds.sock',
    alsSocket: '/tmp/aviary-agent/als.sock',
    stats: { host: '127.0.0.1', port: 15090 },
  },
  'sidecar-local-two-pilots': {
    node: agentNode({ mode: 'sidecar', platform: 'local', name: 'hello-v1', namespace: 'demo', serviceAccount: 'hello', labels: 'app=hello,version=v1', podIp: '127.0.0.1', trustDomain: 'cluster.local' }),
    pilot: { host: '127.0.0.1', port: 15012 },
    otherPilots: [{ host: '127.0.0.1', port: 25012 }],
    pilotTls: { subjectAltName: '127.0.0.1' },
    xdsProtocol: 'sotw',
    adminPort: 15000,
    sdsSocket: '/tmp/aviary-agent/sds.sock',
    alsSocket: '/tmp/aviary-agent/als.sock',
  },
  'sidecar-kubernetes': {
    node: agentNode({ mode: 'sidecar', platform: 'kubernetes', name: 'hello-v1-7d9f', namespace: 'demo', serviceAccount: 'hello', labels: 'app=hello,version=v1', podIp: '10.1.2.3', trustDomain: 'cluster.local' }),
    pilot: { host: 'aviary-pilot.aviary-system.svc', port: 15012 },
    pilotTls: { subjectAltName: 'aviary-pilot.aviary-system.svc' },
    xdsProtocol: 'sotw',
    adminPort: 15000,
    sdsSocket: '/var/run/aviary/sds.sock',
    alsSocket: '/var/run/aviary/als.sock',
    stats: { host: '0.0.0.0', port: 15090 },
    readiness: { host: '0.0.0.0', port: 15021, agentAdminPort: 15020 },
  },
};

describe('envoyBootstrap (UPDATE_GOLDEN=1 rewrites the golden files)', () => {
  for (const [name, input] of Object.entries(cases)) {
    it(`${name} matches __golden__/${name}.json`, () => {
      const text = `${JSON.stringify(envoyBootstrap(input), null, 2)}\n`;
      const file = join(import.meta.dirname, '__golden__', `${name}.json`);
      if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
      expect(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
      expect(text).toBe(readFileSync(file, 'utf8'));
    });

    it.runIf(ENVOY !== '')(`${name} is accepted by envoy --mode validate, with no warning`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'aviary-bootstrap-'));
      try {
        const file = join(dir, 'bootstrap.json');
        writeFileSync(file, JSON.stringify(envoyBootstrap(input)));
        const { stdout, stderr } = await run(ENVOY, ['--mode', 'validate', '-c', file, '--use-dynamic-base-id', '-l', 'warning'], { timeout: 30_000 });
        expect(stdout + stderr).toContain('OK');
        expect((stdout + stderr).split('\n').filter((l) => /\[(warning|error|critical)\]/.test(l))).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('chooses mTLS to pilot: on in Kubernetes or at port 15012 (auto), as set otherwise; verifies the SAN given, else the host', () => {
    const local = { host: '127.0.0.1', port: 15010 };
    expect(pilotTlsSetting({ xdsTls: 'auto', platform: 'local', pilot: local, subjectAltName: '' })).toBeUndefined();
    expect(pilotTlsSetting({ xdsTls: 'auto', platform: 'local', pilot: { host: '127.0.0.1', port: 15012 }, subjectAltName: '' })).toEqual({ subjectAltName: '127.0.0.1' });
    expect(pilotTlsSetting({ xdsTls: 'auto', platform: 'kubernetes', pilot: { host: 'pilot.x.svc', port: 9000 }, subjectAltName: '' })).toEqual({ subjectAltName: 'pilot.x.svc' });
    expect(pilotTlsSetting({ xdsTls: 'off', platform: 'kubernetes', pilot: local, subjectAltName: '' })).toBeUndefined();
    expect(pilotTlsSetting({ xdsTls: 'on', platform: 'local', pilot: local, subjectAltName: 'aviary-pilot.aviary-system.svc' })).toEqual({ subjectAltName: 'aviary-pilot.aviary-system.svc' });
  });

  it('sends xds-grpc over mTLS with the SDS secrets default and ROOTCA and checks pilot by SAN (an IP literal as IP_ADDRESS, no SNI)', () => {
    const b = envoyBootstrap({ ...cases['router-local']!, pilot: { host: '127.0.0.1', port: 15012 }, pilotTls: { subjectAltName: '127.0.0.1' } }) as { static_resources: { clusters: Array<{ name: string; transport_socket?: { typed_config: Record<string, unknown> } }> } };
    const tls = b.static_resources.clusters.find((c) => c.name === 'xds-grpc')!.transport_socket!.typed_config as { sni?: string; common_tls_context: Record<string, unknown> };
    expect(tls.sni).toBeUndefined();
    expect(JSON.stringify(tls.common_tls_context)).toContain('"san_type":"IP_ADDRESS","matcher":{"exact":"127.0.0.1"}');
    expect(JSON.stringify(tls.common_tls_context)).toMatch(/"name":"default".*"cluster_name":"sds-grpc".*"name":"ROOTCA"/);
    const plain = envoyBootstrap(cases['router-local']!) as typeof b;
    expect(plain.static_resources.clusters.find((c) => c.name === 'xds-grpc')!.transport_socket).toBeUndefined();
  });

  it('re-opens the ADS stream with a short, capped, jittered back-off and pings pilot\'s connection', () => {
    for (const input of Object.values(cases)) {
      const b = envoyBootstrap(input) as {
        dynamic_resources: { ads_config: { grpc_services: Array<{ envoy_grpc: { cluster_name: string; retry_policy?: { retry_back_off: { base_interval: string; max_interval: string } } } }> } };
        static_resources: { clusters: Array<{ name: string; typed_extension_protocol_options: Record<string, { explicit_http_config: { http2_protocol_options: { connection_keepalive?: unknown } } }> }> };
      };
      const [ads] = b.dynamic_resources.ads_config.grpc_services;
      expect(ads!.envoy_grpc).toEqual({ cluster_name: 'xds-grpc', retry_policy: { retry_back_off: { base_interval: XDS_RECONNECT.baseInterval, max_interval: XDS_RECONNECT.maxInterval } } });
      // Envoy's default is 0.5 s doubling to 30 s; ours reaches a returning pilot within ~2 s.
      expect(parseFloat(XDS_RECONNECT.baseInterval)).toBeGreaterThanOrEqual(0.1);
      expect(parseFloat(XDS_RECONNECT.baseInterval)).toBeLessThanOrEqual(0.5);
      expect(parseFloat(XDS_RECONNECT.maxInterval)).toBeLessThanOrEqual(2);
      const http2 = (c: string) => Object.values(b.static_resources.clusters.find((x) => x.name === c)!.typed_extension_protocol_options)[0]!.explicit_http_config.http2_protocol_options;
      expect(http2('xds-grpc').connection_keepalive).toEqual({ interval: '15s', timeout: '5s' });
      // The agent's own Unix-socket servers need no keepalive.
      expect(http2('sds-grpc').connection_keepalive).toBeUndefined();
    }
  });

  it('puts the Istio node id and metadata pilot reads', () => {
    const b = envoyBootstrap(cases['router-local']!) as { node: { id: string; metadata: Record<string, unknown> } };
    expect(b.node.id).toBe('router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local');
    expect(b.node.metadata).toMatchObject({ NAMESPACE: 'istio-system', INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: '127.0.0.1', LABELS: { istio: 'ingressgateway' } });
    const k = envoyBootstrap(cases['sidecar-kubernetes']!) as { node: { metadata: Record<string, unknown> } };
    expect(k.node.metadata['INTERCEPTION_MODE']).toBe('REDIRECT');
  });

  it('parses host:port and refuses anything else with the option name', () => {
    expect(parseHostPort('[::1]:15010', 'x')).toEqual({ host: '::1', port: 15010 });
    expect(parseHostPort('pilot.aviary:15010', 'x')).toEqual({ host: 'pilot.aviary', port: 15010 });
    expect(() => parseHostPort('pilot', 'AVIARY_PILOT_ADDRESS')).toThrow('AVIARY_PILOT_ADDRESS: expected host:port, got "pilot"');
    expect(() => parseHostPort('pilot:0', 'p')).toThrow(/expected host:port/);
  });

  it('parses a list of pilot addresses into endpoints of one xds-grpc cluster', () => {
    expect(parseHostPorts('127.0.0.1:15012, 127.0.0.1:25012', 'x')).toEqual([
      { host: '127.0.0.1', port: 15012 },
      { host: '127.0.0.1', port: 25012 },
    ]);
    expect(() => parseHostPorts('127.0.0.1:15012,', 'AVIARY_PILOT_ADDRESS')).toThrow('AVIARY_PILOT_ADDRESS: expected host:port, got ""');
    expect(() => parseHostPorts('a:1,a:1', 'AVIARY_PILOT_ADDRESS')).toThrow('AVIARY_PILOT_ADDRESS: a:1 is listed twice');
    const b = envoyBootstrap({ ...cases['sidecar-local-two-pilots']!, otherPilots: [{ host: 'pilot-b.local', port: 15012 }] }) as { static_resources: { clusters: Array<{ name: string; type: string; load_assignment: { endpoints: Array<{ lb_endpoints: unknown[] }> } }> } };
    const xds = b.static_resources.clusters.find((c) => c.name === 'xds-grpc')!;
    expect(xds.type).toBe('STRICT_DNS'); // a name among the addresses
    expect(xds.load_assignment.endpoints[0]!.lb_endpoints).toHaveLength(2);
  });
});
