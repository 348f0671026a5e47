import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appConfigs } from '@aviary/config';

const root = resolve(import.meta.dirname, '..', '..');
const stateDir = mkdtempSync(join(tmpdir(), 'aviary-e2e-mesh-'));
let launcher: ChildProcess | undefined;

afterAll(() => {
  if (launcher !== undefined && launcher.exitCode === null) launcher.kill('SIGKILL');
  rmSync(stateDir, { recursive: true, force: true });
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
    launcher = spawn(process.execPath, [join(root, 'dist/tools/local-mesh/main.js'), '--state-dir', stateDir, '--nats-port', '0', '--log-level', 'info'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    launcher.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    launcher.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!output.includes('Aviary local mesh is ready')) {
      if (Date.now() > deadline || launcher.exitCode !== null) throw new Error(`launcher did not become ready:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const children: number[] = [];
    for (const spec of appConfigs) {
      const port = spec.options.adminPort.default;
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(res.status, spec.app).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ready', checks: { nats: true } });
      expect(output).toContain(`http://127.0.0.1:${port}`);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain(`aviary_process_cpu_user_seconds_total{app="${spec.app}"}`);
      const docs = await fetch(`http://127.0.0.1:${port}/docs/json`);
      expect(((await docs.json()) as { info: { title: string } }).info.title).toContain(spec.app);
    }
    // Every app's pid, read from its own log's first line.
    for (const spec of appConfigs) {
      const first = readFileSync(join(stateDir, 'logs', `${spec.app}.log`), 'utf8').split('\n')[0] as string;
      children.push((JSON.parse(first) as { pid: number }).pid);
    }
    expect(children.every(alive)).toBe(true);

    const exited = new Promise<number | null>((r) => launcher!.once('exit', (code) => r(code)));
    launcher.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const spec of appConfigs) expect(output).toMatch(new RegExp(`${spec.app}\\s+exited 0`));
    expect(output).toContain('nats-server          stopped');
    expect(children.filter(alive)).toEqual([]);
  });
});
