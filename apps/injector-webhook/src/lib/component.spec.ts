import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { injectorConfig, parseConfig } from '@aviary/config';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { createLogger } from '@aviary/observability';
import { Issuer } from '@aviary/pki';
import { buildInjector, valuesFromConfig, type InjectorConfig } from './component';

const review = readFileSync(new URL('./__fixtures__/admission-review.json', import.meta.url), 'utf8');

describe('injector component (real NATS, citadel-signed serving certificate)', () => {
  let nats: NatsServer;
  let bus: Bus;
  const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });

  beforeAll(async () => {
    nats = await NatsServer.start();
    bus = await Bus.connect({ url: nats.url, source: 'citadel-test', logger: createLogger('test', 'silent'), registry: new Registry() });
    // A stand-in for citadel's internal signing responder, using the same PKI library.
    bus.reply('aviary.ca.v1.sign', async ({ data }) => ({ ok: true as const, certChain: [ca.signServing(data.csr, data.dnsNames, data.ttlSeconds).certPem, ca.rootPem] }));
  });
  afterAll(async () => {
    await bus.close();
    await nats.stop();
  });

  it('loads the chart template, serves /inject over TLS signed by citadel, and stops', async () => {
    const parsed = parseConfig(injectorConfig, ['--webhook-port', '0', '--tls-dns-names', 'localhost', '--native-sidecar', '--log-level', 'silent'], {});
    if (parsed.kind !== 'config') throw new Error('help');
    const config = parsed.config as InjectorConfig;
    const registry = new Registry();
    const component = await buildInjector({ config, logger: createLogger('injector-webhook', 'silent'), registry, bus });
    expect(component.readiness?.[0]?.ready()).toBe(false);
    const info = await component.listen!();
    try {
      expect(info['certificate']).toBe('citadel');
      expect(component.readiness?.[0]?.ready()).toBe(true);
      const agent = new Agent({ connect: { ca: ca.rootPem, servername: 'localhost' } });
      const res = await request(`${info['webhook'] as string}/inject`, { method: 'POST', body: review, dispatcher: agent });
      const answer = (await res.body.json()) as { response: { allowed: boolean; patch: string } };
      await agent.close();
      expect(answer.response.allowed).toBe(true);
      const patch = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString()) as { path: string; value: { name: string; restartPolicy?: string } }[];
      // --native-sidecar: the proxy goes in as an init container with restartPolicy Always.
      expect(patch.find((op) => op.path === '/spec/initContainers')!.value).toMatchObject([{ name: 'aviary-init' }, { name: 'istio-proxy', restartPolicy: 'Always' }]);
    } finally {
      await component.stop!();
    }
  });
});

describe('valuesFromConfig', () => {
  const values = (argv: string[], env: Record<string, string> = {}) => {
    const parsed = parseConfig(injectorConfig, argv, env);
    if (parsed.kind !== 'config') throw new Error('help');
    return valuesFromConfig(parsed.config as InjectorConfig);
  };

  it('gives injected proxies the configured resources (the chart sets them from proxy.resources), Istio\'s defaults otherwise', () => {
    expect(values([]).proxyResources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1Gi' } });
    const env = { AVIARY_PROXY_CPU_REQUEST: '10m', AVIARY_PROXY_MEMORY_REQUEST: '64Mi', AVIARY_PROXY_CPU_LIMIT: '1', AVIARY_PROXY_MEMORY_LIMIT: '512Mi' };
    expect(values([], env).proxyResources).toEqual({ requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: '1', memory: '512Mi' } });
  });

  it('refuses a resource that is not a Kubernetes quantity', () => {
    expect(() => values(['--proxy-cpu-request', '10 cores'])).toThrow(/proxyCpuRequest|proxy-cpu-request|PROXY_CPU_REQUEST/);
  });
});
