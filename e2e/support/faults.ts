import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Answer } from './demo';

/** Helpers of the fault suites (e2e/demo/faults, e2e/demo/ha): processes, Envoy and metrics probes, samplers. */

/** The pid in the last line of an app's log under `stateDir` (its latest run, once it has logged). */
export function lastPid(stateDir: string, name: string): number {
  const lines = readFileSync(join(stateDir, 'logs', `${name}.log`), 'utf8').split('\n').filter((l) => l.startsWith('{'));
  return (JSON.parse(lines.at(-1) as string) as { pid: number }).pid;
}

/**
 * Which of `pilots` (replicas' admin URLs) holds the ADS stream of the proxy whose node id
 * contains `~<nodeName>` now (each replica's GET /api/v1/proxies): its index.
 */
export async function servingReplica(pilots: readonly string[], nodeName: string): Promise<number | undefined> {
  for (const [i, pilot] of pilots.entries()) {
    const res = await fetch(`${pilot}/api/v1/proxies`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
    if (res?.status !== 200) continue;
    const { proxies } = (await res.json()) as { proxies: Array<{ id?: string; proxyId?: string }> };
    if (proxies.some((p) => (p.id ?? p.proxyId ?? '').includes(`~${nodeName}`))) return i;
  }
  return undefined;
}

/** The pid in the first line of an app's log under `stateDir` (its first run). */
export function firstPid(stateDir: string, name: string): number {
  const first = readFileSync(join(stateDir, 'logs', `${name}.log`), 'utf8').split('\n')[0] as string;
  return (JSON.parse(first) as { pid: number }).pid;
}

/**
 * Envoy's ADS state: `control_plane.connected_state` (1: its stream to pilot is up) and how many
 * connections it has opened to pilot so far (`cluster.xds-grpc.upstream_cx_total`), so a
 * reconnect faster than any sampler (a second pilot replica answers at once) is still seen.
 */
export async function xdsState(admin: string): Promise<{ connected: number; connections: number }> {
  const filter = '^(control_plane\\.connected_state|cluster\\.xds-grpc\\.upstream_cx_total)$';
  const text = await (await fetch(`${admin}/stats?filter=${encodeURIComponent(filter)}`, { signal: AbortSignal.timeout(2_000) })).text();
  const read = (name: string): number => {
    const m = new RegExp(`${name.replace(/\./g, '\\.')}: (\\d+)`).exec(text);
    return m === null ? NaN : Number(m[1]);
  };
  return { connected: read('control_plane.connected_state'), connections: read('cluster.xds-grpc.upstream_cx_total') };
}

/** Envoy's `control_plane.connected_state` (1: its ADS stream to pilot is up). */
export async function connectedState(admin: string): Promise<number> {
  return (await xdsState(admin)).connected;
}

/** HTTP status of a GET, 0 when it fails. */
export async function status(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status;
  } catch {
    return 0;
  }
}

/** Sum of a Prometheus counter's samples whose labels match `labels` (a substring test per pair). */
export async function counter(url: string, name: string, labels: readonly string[] = []): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels.every((l) => line.includes(l))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export function expectNoFailures(load: { answers: Answer[]; failures: string[] }): void {
  expect(load.failures).toEqual([]);
  expect(load.answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body}`)).toEqual([]);
}

/** A sampler: calls `probe` every `everyMs` until stopped. */
export function sample(everyMs: number, probe: (t: number) => Promise<void>): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await probe(Date.now()).catch(() => undefined);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
