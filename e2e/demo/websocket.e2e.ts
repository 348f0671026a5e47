import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LocalMesh } from '../support/mesh';

/**
 * WebSockets across the local mesh demo, as pilot configures it: client → ingress gateway's Envoy
 * (:8080, the demo's 90/10 split) → the hello sidecar's inbound listener (mTLS) → the app's
 * `/ws` echo (tools/demo/service.ts), which prefixes each echo with its version. Every message
 * of every connection must come back; the versions seen are printed (`[websocket] …`).
 */

const CONNECTIONS = 30;
const MESSAGES = 5;
let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await LocalMesh.start({ args: ['--demo'] });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
});

/** One WebSocket through the ingress: sends MESSAGES messages one after the other, resolves with the echoes. */
async function session(i: number): Promise<string[]> {
  const ws = new WebSocket('ws://127.0.0.1:8080/ws');
  const got: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection ${i}: timed out after ${got.length} echoes`)), 10_000);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`connection ${i}: upgrade refused with ${res.statusCode}`)));
    ws.once('open', () => ws.send(`c${i} m0`));
    ws.on('message', (data) => {
      got.push(String(data));
      if (got.length < MESSAGES) ws.send(`c${i} m${got.length}`);
      else {
        clearTimeout(timer);
        ws.close();
        resolve(got);
      }
    });
  });
}

describe('WebSockets through the local mesh (ingress gateway → sidecar with mTLS → app)', () => {
  it(`${CONNECTIONS} connections × ${MESSAGES} messages are all echoed, each by one version`, async () => {
    const versions: Record<string, number> = {};
    for (let i = 0; i < CONNECTIONS; i++) {
      const echoes = await session(i);
      const version = echoes[0]!.slice(0, echoes[0]!.indexOf(':'));
      expect(echoes).toEqual(Array.from({ length: MESSAGES }, (_, m) => `${version}: c${i} m${m}`));
      versions[version] = (versions[version] ?? 0) + 1;
    }
    process.stdout.write(`[websocket] ${CONNECTIONS} connections × ${MESSAGES} messages through the ingress, all echoed; versions ${JSON.stringify(versions)}\n`);
    expect(Object.keys(versions).every((v) => v === 'v1' || v === 'v2')).toBe(true);
  });
});
