import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Bus, Subjects } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { startApp, stopApp, type AppProcess } from './processes';
import { restartDelay, Supervised, type SupervisorEvents } from './supervisor';

const dir = mkdtempSync(join(tmpdir(), 'aviary-supervisor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recorder(): { lines: string[]; events: SupervisorEvents; waitFor: (pattern: RegExp) => Promise<void> } {
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  const push = (l: string): void => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  };
  return {
    lines,
    events: {
      restarting: (e) => push(`restarting ${e.name} #${e.restarts} in ${e.delayMs} (${e.exit.code ?? e.exit.signal})`),
      restarted: (e) => push(`restarted ${e.name} #${e.restarts} pid ${e.pid === undefined ? '?' : 'n'}`),
      restartFailed: (e) => push(`failed ${e.name} #${e.restarts}`),
    },
    waitFor: async (pattern) => {
      while (!lines.some((l) => pattern.test(l))) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

describe('restartDelay', () => {
  it('doubles from initialMs up to maxMs', () => {
    const p = { initialMs: 500, maxMs: 30_000, stableMs: 30_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8, 100].map((n) => restartDelay(p, n))).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });
});

describe('Supervised (real child processes)', () => {
  it('restarts a process that keeps crashing, with growing back-off and one event per restart, until stopped', async () => {
    // Crashes at once on its first three runs (counted in a file), then stays up.
    const counter = join(dir, 'runs');
    writeFileSync(counter, '0');
    const script = join(dir, 'crash.mjs');
    writeFileSync(script, `import { readFileSync, writeFileSync } from 'node:fs';
const n = Number(readFileSync(${JSON.stringify(counter)}, 'utf8')) + 1;
writeFileSync(${JSON.stringify(counter)}, String(n));
if (n <= 3) process.exit(7);
setInterval(() => {}, 1000);
`);
    const rec = recorder();
    const sup = await Supervised.start<AppProcess>({
      name: 'crashy',
      start: () => startApp('crashy', script, process.env, join(dir, 'crashy.log')),
      exited: async (a) => ({ code: await a.exited, signal: a.child.signalCode }),
      pid: (a) => a.child.pid,
      policy: { initialMs: 5, maxMs: 12, stableMs: 60_000 },
      events: rec.events,
    });
    try {
      await rec.waitFor(/restarted crashy #3/);
      expect(rec.lines).toEqual(['restarting crashy #1 in 5 (7)', 'restarted crashy #1 pid n', 'restarting crashy #2 in 10 (7)', 'restarted crashy #2 pid n', 'restarting crashy #3 in 12 (7)', 'restarted crashy #3 pid n']);
      // The fourth run is the one that stays up.
      for (let i = 0; i < 200 && readFileSync(counter, 'utf8') !== '4'; i++) await new Promise((r) => setTimeout(r, 50));
      expect(readFileSync(counter, 'utf8')).toBe('4');
      expect(sup.current.child.exitCode).toBeNull();
    } finally {
      await sup.stop();
      await stopApp(sup.current, 2_000);
    }
    // Stopped on purpose: no restart follows.
    expect(sup.current.child.signalCode).toBe('SIGTERM');
    expect(rec.lines.filter((l) => l.startsWith('restarting'))).toHaveLength(3);
  });

  it('restarts a killed nats-server on the same port with the same JetStream store', async () => {
    const storeDir = join(dir, 'nats');
    const nats = await NatsServer.start({ storeDir });
    let starts = 0;
    const rec = recorder();
    const sup = await Supervised.start<NatsServer>({
      name: 'nats-server',
      start: async () => {
        if (starts++ > 0) await nats.restart();
        return nats;
      },
      exited: (n) => n.exited,
      pid: (n) => n.pid,
      policy: { initialMs: 5, maxMs: 50, stableMs: 60_000 },
      events: rec.events,
    });
    const bus = await Bus.connect({ url: nats.url, source: 'supervisor-spec', logger: pino({ level: 'silent' }), registry: new Registry() });
    try {
      await bus.publishDurable(Subjects.telemetryRequests, { proxyId: 'p', records: [] });
      const first = nats.pid!;
      process.kill(first, 'SIGKILL');
      await rec.waitFor(/restarted nats-server #1/);
      expect(rec.lines[0]).toBe('restarting nats-server #1 in 5 (SIGKILL)');
      expect(nats.pid).not.toBe(first);
      // Same port (the client reconnects by itself), same store: the stored message is still there.
      // (JetStream needs a moment after the restart to recover its store; retry until it answers.)
      let published = false;
      for (let i = 0; i < 20 && !published; i++) published = await bus.publishDurable(Subjects.telemetryRequests, { proxyId: 'p', records: [] }, 'after-restart').then(() => true, () => false);
      expect(published).toBe(true);
      expect((await (await bus.manager()).streams.info('AVIARY_TELEMETRY')).state.messages).toBe(2);
    } finally {
      await bus.close();
      await sup.stop();
      await nats.stop();
    }
  });
});
