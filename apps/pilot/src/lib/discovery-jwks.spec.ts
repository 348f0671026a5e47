import { createServer, type Server } from 'node:http';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvConfigStore } from '@aviary/config-store';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { Discovery } from './discovery';

/**
 * The JWKS source wired into discovery: a RequestAuthentication stored in the (real, NATS KV)
 * config store names a jwksUri served on loopback; pilot fetches it and the model it serves
 * carries the key set (the translator inlines it into jwt_authn).
 */

const KEYS = { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1' }] };
let nats: NatsServer;
let bus: Bus;
let jwksServer: Server;
let jwksUrl = '';
let fetched = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'test', logger: pino({ level: 'silent' }), registry: new Registry() });
  jwksServer = createServer((_req, res) => {
    fetched++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(KEYS));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`;
});
afterAll(async () => {
  await new Promise((r) => jwksServer.close(r));
  await bus?.close();
  await nats?.stop();
});

describe('Discovery with RequestAuthentication jwksUri', () => {
  it('fetches the key set and rebuilds the model with it', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'pilot_jwks' });
    await store.apply({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt', namespace: 'foo' },
      spec: { jwtRules: [{ issuer: 'https://issuer.example', jwksUri: jwksUrl }] },
    } as never);
    const discovery = new Discovery({
      store,
      bus,
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      trustDomain: 'cluster.local',
      debounce: { quietMs: 10, maxDelayMs: 100 },
      jwks: { timeoutMs: 2_000 },
    });
    try {
      await discovery.start();
      const deadline = Date.now() + 5_000;
      while (discovery.model?.requestAuthentications.resolved(jwksUrl) === undefined) {
        if (Date.now() > deadline) throw new Error('JWKS never reached the model');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(discovery.model!.requestAuthentications.resolved(jwksUrl)).toEqual({ jwks: JSON.stringify(KEYS) });
      expect(fetched).toBe(1);
    } finally {
      await discovery.stop();
    }
  });
});
