import { request, type Agent } from 'node:http';
import { expect } from 'vitest';
import type { LocalMesh } from './mesh';

/** Addresses of the local mesh demo (`npm run demo`), shared by the e2e/demo suites. */
export const GATEWAY = 'http://127.0.0.1:8080';
export const PILOT = 'http://127.0.0.1:15014';
export const CITADEL = 'http://127.0.0.1:15016';
export const COLLECTOR = 'http://127.0.0.1:15020';
export const HOST = 'hello.demo.svc.cluster.local';

export interface Answer {
  readonly status: number;
  readonly version: string | null;
  readonly headers: Headers;
  readonly body: string;
}

/** The agent admin of the ingress gateway and of the two demo sidecars (Envoy's admin passed through). */
export const AGENT_ADMINS = ['http://127.0.0.1:15000', 'http://127.0.0.1:15100', 'http://127.0.0.1:15200'] as const;

/**
 * True once no Envoy of the demo has a listener or filter chain warming or draining. Envoy applies a listener
 * change by draining the previous filter chains: a connection opened before the change serves
 * its next request with the previous config (then closes), until the drain time is over.
 */
export async function listenersSettled(): Promise<boolean> {
  const filter = encodeURIComponent('^listener_manager\\.total_(filter_chains_draining|listeners_draining|listeners_warming)$');
  for (const admin of AGENT_ADMINS) {
    const text = await (await fetch(`${admin}/stats?filter=${filter}`)).text();
    const values = text.split('\n').filter((l) => l.includes(': ')).map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
    if (values.length !== 3 || values.some((v) => v !== 0)) return false;
  }
  return true;
}

/** One request through the ingress gateway. */
export async function get(path = '/'): Promise<Answer> {
  const res = await fetch(`${GATEWAY}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, version: res.headers.get('x-version'), headers: res.headers, body: await res.text() };
}

/**
 * One request through the ingress gateway with a chosen Host header (fetch cannot set Host, so
 * node:http): on `agent` (default Node's global agent, `false` for a fresh connection), with
 * extra `headers`. Rejects on a transport error or after 5 s.
 */
export function getAs(host: string, path = '/', opts: { readonly headers?: Record<string, string>; readonly agent?: Agent | false } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: 8080, path, headers: { host, ...opts.headers }, timeout: 5_000, ...(opts.agent !== undefined && { agent: opts.agent }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? []].flat()) headers.append(name, v);
        resolve({ status: res.statusCode ?? 0, version: headers.get('x-version'), headers, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Applies YAML through pilot's REST API (the mesh's admin token; `pilot`: another replica's admin URL) and expects success. */
export async function apply(mesh: LocalMesh, yaml: string, pilot: string = PILOT): Promise<void> {
  const res = await fetch(`${pilot}/api/v1/config`, { method: 'POST', headers: { authorization: `Bearer ${mesh.token}`, 'content-type': 'application/yaml' }, body: yaml });
  expect(res.status, await res.clone().text()).toBe(200);
}

/** Deletes one resource of the demo namespace through pilot's REST API. */
export async function remove(mesh: LocalMesh, plural: string, name: string): Promise<void> {
  const res = await fetch(`${PILOT}/api/v1/config/${plural}/demo/${name}`, { method: 'DELETE', headers: { authorization: `Bearer ${mesh.token}` } });
  expect(res.status).toBeLessThan(300);
}

/** Polls `probe` (errors count as "not yet") until it returns a value, at most `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `n` request loops through the ingress until `stop()`: every answer and every failure (a
 * thrown fetch) is kept, for tests that change things under load. Unpaced, each loop sends its
 * next request as soon as the last is answered; with `perLoopPerSecond` it sends at most that
 * many a second (a test whose assertion depends on the volume, e.g. records held during an
 * outage against a bound, must not depend on how fast this machine happens to be). With `host`,
 * the requests carry that Host header (`getAs`, on Node's global agent).
 */
export function requestLoops(n: number, path = '/', opts: { readonly perLoopPerSecond?: number; readonly host?: string } = {}): { readonly answers: Answer[]; readonly failures: string[]; stop(): Promise<void> } {
  const answers: Answer[] = [];
  const failures: string[] = [];
  const gapMs = opts.perLoopPerSecond === undefined ? 0 : 1_000 / opts.perLoopPerSecond;
  let running = true;
  const loop = async (): Promise<void> => {
    let next = Date.now();
    while (running) {
      try {
        answers.push(await (opts.host === undefined ? get(path) : getAs(opts.host, path)));
      } catch (err) {
        failures.push(String(err));
      }
      if (gapMs === 0) continue;
      next += gapMs;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = Date.now();
    }
  };
  const loops = Array.from({ length: n }, () => loop());
  return {
    answers,
    failures,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * Environment of a local mesh for the Canary suites: the collector publishes summaries every
 * second over a 3 s window, the controller ticks every 250 ms, telemetry is flushed every 200 ms.
 */
export const CANARY_MESH_ENV: Readonly<Record<string, string>> = {
  AVIARY_SUMMARY_INTERVAL_MS: '1000',
  AVIARY_SUMMARY_WINDOW_SECONDS: '3',
  AVIARY_CANARY_TICK_MS: '250',
  AVIARY_TELEMETRY_FLUSH_MS: '200',
};

/**
 * ServiceEntries `hello-v1` and `hello-v2` in the demo namespace: one Service per demo version
 * (`hello-<v>.demo.svc.cluster.local`, port 80, its workloads by the `version` label), the
 * backends the Gateway API suites route to.
 */
export const HELLO_VERSION_SERVICES = ['v1', 'v2']
  .map(
    (v) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello-${v}, namespace: demo }
spec:
  hosts: [hello-${v}.demo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello, version: ${v} } }
`,
  )
  .join('---\n');

/**
 * The demo's VirtualService `hello` (tools/demo/demo.yaml): the v1/v2 split (90/10 unless given),
 * optionally behind extra routes and with a response header set on the split route.
 */
export function demoVirtualService(opts: { v1?: number; v2?: number; extraRoutes?: string; responseHeader?: readonly [string, string] } = {}): string {
  const header = opts.responseHeader === undefined ? '' : `    headers: { response: { set: { ${opts.responseHeader[0]}: ${opts.responseHeader[1]} } } }\n`;
  return helloVirtualService(`${opts.extraRoutes ?? ''}  - name: hello
${header}    route:
    - { destination: { host: ${HOST}, subset: v1, port: { number: 80 } }, weight: ${opts.v1 ?? 90} }
    - { destination: { host: ${HOST}, subset: v2, port: { number: 80 } }, weight: ${opts.v2 ?? 10} }
`);
}

/** The demo's VirtualService `hello` at the ingress gateway with these `http` routes (YAML list items, indented two spaces). */
export function helloVirtualService(http: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: hello, namespace: demo }
spec:
  hosts: ['*']
  gateways: [hello-gateway]
  http:
${http}`;
}
