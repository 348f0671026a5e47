import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appConfigs } from '@aviary/config';
import { LocalMesh } from '../support/mesh';

let mesh: LocalMesh | undefined;

afterAll(async () => {
  await mesh?.stop();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('local mesh launcher', () => {
  it('starts nats-server and all five apps, reports them ready, and stops everything on SIGINT', async () => {
    mesh = await LocalMesh.start();
    const pids: number[] = [];
    for (const spec of appConfigs) {
      const port = spec.options.adminPort.default;
      const base = `http://127.0.0.1:${port}`;
      expect(mesh.output).toContain(base);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status, spec.app).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', checks: { nats: true } });
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${base}/metrics`)).text()).toContain(`aviary_process_cpu_user_seconds_total{app="${spec.app}"}`);
      expect(((await (await fetch(`${base}/docs/json`)).json()) as { info: { title: string } }).info.title).toContain(spec.app);
      // Each app logs JSON lines; the first names its pid.
      const first = readFileSync(join(mesh.stateDir, 'logs', `${spec.app}.log`), 'utf8').split('\n')[0] as string;
      pids.push((JSON.parse(first) as { pid: number }).pid);
    }
    expect(pids.every(alive)).toBe(true);

    const output = () => mesh!.output;
    expect(await mesh.stop({ keepState: false })).toBe(0);
    for (const spec of appConfigs) expect(output()).toMatch(new RegExp(`${spec.app}\\s+exited 0`));
    expect(output()).toContain('nats-server          stopped');
    expect(pids.filter(alive)).toEqual([]);
  });

  it('with --restart false, stops everything when nats-server dies (exit 1)', async () => {
    mesh = await LocalMesh.start({ args: ['--restart', 'false'] });
    const pids = appConfigs.map((spec) => (JSON.parse(readFileSync(join(mesh!.stateDir, 'logs', `${spec.app}.log`), 'utf8').split('\n')[0] as string) as { pid: number }).pid);
    const nats = Number(/nats-server\s+nats:\/\/\S+ \(pid (\d+)/.exec(mesh.output)?.[1]);
    expect(nats).toBeGreaterThan(0);
    process.kill(nats, 'SIGKILL');
    const exited = await new Promise<number | null>((r) => mesh!.child.once('exit', (code) => r(code)));
    expect(exited).toBe(1);
    expect(mesh.output).toContain('nats-server exited unexpectedly (signal SIGKILL); --restart false: stopping the local mesh');
    expect(mesh.output).not.toContain('restarting in');
    expect(pids.filter(alive)).toEqual([]);
  });
});
