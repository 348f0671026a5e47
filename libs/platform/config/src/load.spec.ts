import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aviaryVersion, citadelConfig, gatewayConfig, injectorConfig, parseConfig, pilotConfig, renderHelp } from './index';

const config = (argv: string[], env: Record<string, string> = {}) => {
  const result = parseConfig(pilotConfig, argv, env);
  if (result.kind !== 'config') throw new Error('expected a config');
  return result.config;
};

describe('parseConfig', () => {
  it('gives documented defaults', () => {
    const c = config([]);
    expect(c.xdsPort).toBe(15010);
    expect(c.adminPort).toBe(15014);
    expect(c.natsUrl).toBe('nats://127.0.0.1:4222');
    expect(c.trustDomain).toBe('cluster.local');
    expect(c.logLevel).toBe('info');
  });

  it('reads AVIARY_* variables and lets flags win', () => {
    const env = { AVIARY_XDS_PORT: '16010', AVIARY_LOG_LEVEL: 'debug' };
    expect(config([], env).xdsPort).toBe(16010);
    expect(config(['--xds-port', '17010'], env).xdsPort).toBe(17010);
    expect(config(['--xds-port=18010'], env).xdsPort).toBe(18010);
    expect(config([], env).logLevel).toBe('debug');
  });

  it('reads standard variables that keep their own names', () => {
    expect(config([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).otelExporterOtlpEndpoint).toBe('http://127.0.0.1:4318');
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(config([]))).toBe(true);
  });

  it.each([
    [['--xds-port', 'abc'], {}, '--xds-port: must be an integer between 0 and 65535 (got "abc")'],
    [[], { AVIARY_XDS_PORT: '70000' }, 'AVIARY_XDS_PORT: must be an integer between 0 and 65535 (got "70000")'],
    [[], { AVIARY_LOG_LEVEL: 'loud' }, 'AVIARY_LOG_LEVEL: must be one of "trace", "debug", "info", "warn", "error", "fatal", "silent" (got "loud")'],
    [[], { AVIARY_NATS_URL: 'http://x' }, 'AVIARY_NATS_URL: must be a NATS URL such as nats://127.0.0.1:4222 (comma-separated for a cluster) (got "http://x")'],
    [['--no-such-flag'], {}, 'unknown flag --no-such-flag (see --help)'],
    [['stray'], {}, 'unexpected argument "stray" (options are --name value or --name=value; see --help)'],
    [['--xds-port'], {}, 'flag --xds-port needs a value'],
  ])('rejects %j %j with one line naming the option', (argv, env, message) => {
    expect(() => parseConfig(pilotConfig, argv, env)).toThrow(message);
  });

  it('never echoes a secret value in an error', () => {
    expect(() => parseConfig(pilotConfig, [], { AVIARY_ADMIN_TOKEN: 'x'.repeat(5000) })).toThrow(/^AVIARY_ADMIN_TOKEN: [^x]*$/);
  });

  it('parses enums and unions per app', () => {
    const r = parseConfig(gatewayConfig, ['--mode', 'sidecar'], {});
    expect(r.kind === 'config' && r.config.mode).toBe('sidecar');
    expect(() => parseConfig(gatewayConfig, ['--mode', 'waypoint'], {})).toThrow('--mode: must be one of "router", "sidecar"');
  });
});

describe('injector defaults', () => {
  // The README and the chart install into istio-system; the pilot Service exposes mTLS xDS on
  // 15012 only (no plaintext 15010) and `npm run images` builds docker.io/aviary/gateway:<version>.
  it('name the istio-system Services, ports the chart exposes and the image the build produces', () => {
    const result = parseConfig(injectorConfig, [], {});
    if (result.kind !== 'config') throw new Error('expected a config');
    const c = result.config;
    expect(c.pilotAddress).toBe('aviary-pilot.istio-system.svc:15012');
    expect(c.citadelAddress).toBe('aviary-citadel.istio-system.svc:15013');
    expect(c.proxyNatsUrl).toBe('nats://aviary-nats.istio-system.svc:4222');
    expect(c.tlsDnsNames.split(',')).toContain('aviary-injector-webhook.istio-system.svc');
    expect(c.proxyImage).toBe(`docker.io/aviary/gateway:${aviaryVersion}`);
  });
});

describe('pilot defaults', () => {
  it("name the istio-system Service in the xDS serving certificate (what injected proxies verify)", () => {
    const result = parseConfig(pilotConfig, [], {});
    if (result.kind !== 'config') throw new Error('expected a config');
    expect(result.config.xdsTlsDnsNames.split(',')).toEqual(expect.arrayContaining(['aviary-pilot.istio-system.svc', 'aviary-pilot.istio-system.svc.cluster.local']));
    expect(result.config.xdsTlsDnsNames).not.toContain('aviary-system');
  });
});

describe('gateway (agent) Kubernetes options', () => {
  it('reads the injector\'s ISTIO_KUBE_APP_PROBERS, the labels file and the citadel TLS settings', () => {
    const result = parseConfig(gatewayConfig, [], {
      ISTIO_KUBE_APP_PROBERS: '{"/app-health/web/readyz":{"tcpSocket":{"port":80}}}',
      AVIARY_APP_PROBE_PORT: '15020',
      AVIARY_LABELS_PATH: '/etc/istio/pod/labels',
      AVIARY_CITADEL_TLS: 'on',
      AVIARY_CA_ROOT_PATH: '/var/run/secrets/istio/root-cert.pem',
    });
    if (result.kind !== 'config') throw new Error('expected a config');
    expect(result.config.appProbers).toContain('/app-health/web/readyz');
    expect(result.config.appProbePort).toBe(15020);
    expect(result.config.labelsPath).toBe('/etc/istio/pod/labels');
    expect(result.config.citadelTls).toBe('on');
    expect(result.config.caRootPath).toBe('/var/run/secrets/istio/root-cert.pem');
  });
});

describe('--help', () => {
  it('lists every option with its flag, variable and default', () => {
    const result = parseConfig(citadelConfig, ['--help'], {});
    expect(result.kind).toBe('help');
    const text = renderHelp(citadelConfig);
    for (const flag of ['--ca-port', '--ca-tls-port', '--admin-port', '--nats-url', '--cert-ttl-seconds']) expect(text).toContain(flag);
    expect(text).toContain('AVIARY_CA_PORT');
    expect(text).toContain('[default: 8060]');
    expect(text).toContain('[default: (unset)]');
  });
});

describe('aviaryVersion', () => {
  it('matches the root package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(aviaryVersion).toBe(pkg.version);
  });
});
