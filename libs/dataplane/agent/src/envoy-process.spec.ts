import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEnvoyLogLine, reapStaleEnvoy } from './envoy-process';

describe('parseEnvoyLogLine', () => {
  it('maps Envoy levels to pino levels and keeps the logger name', () => {
    expect(parseEnvoyLogLine('warning|config|gRPC config stream closed: 14, connection refused')).toEqual({ level: 'warn', logger: 'config', msg: 'gRPC config stream closed: 14, connection refused' });
    expect(parseEnvoyLogLine('critical|main|error initializing configuration')).toMatchObject({ level: 'fatal', logger: 'main' });
    expect(parseEnvoyLogLine('info|upstream|a|b')).toEqual({ level: 'info', logger: 'upstream', msg: 'a|b' });
  });

  it('keeps a line in another format (a crash backtrace) as an error', () => {
    expect(parseEnvoyLogLine('Caught Segmentation fault, suspect faulting address 0x0')).toEqual({ level: 'error', logger: 'envoy', msg: 'Caught Segmentation fault, suspect faulting address 0x0' });
  });
});

describe('reapStaleEnvoy (real processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aviary-reap-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A stand-in for an orphaned Envoy: a process whose command line names the bootstrap path. */
  function orphan(bootstrap: string): ChildProcess {
    return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', bootstrap], { stdio: 'ignore' });
  }

  it('stops the process named in the pid file while its command line names the bootstrap', async () => {
    const bootstrap = join(dir, 'envoy-bootstrap.json');
    const child = orphan(bootstrap);
    const exited = new Promise((r) => child.once('exit', (_code, signal) => r(signal)));
    const pidFile = join(dir, 'envoy.pid');
    writeFileSync(pidFile, `${child.pid}\n`);
    await new Promise((r) => setTimeout(r, 100)); // let the child exec, so /proc shows its command line
    expect(await reapStaleEnvoy(pidFile, bootstrap)).toBe(child.pid);
    expect(await exited).toBe('SIGTERM');
  });

  it('leaves alone a process that does not name the bootstrap (a reused pid), and a missing pid file', async () => {
    const other = orphan(join(dir, 'something-else.json'));
    try {
      const pidFile = join(dir, 'other.pid');
      writeFileSync(pidFile, `${other.pid}\n`);
      await new Promise((r) => setTimeout(r, 100));
      expect(await reapStaleEnvoy(pidFile, join(dir, 'envoy-bootstrap.json'))).toBeUndefined();
      expect(other.exitCode).toBeNull();
      expect(await reapStaleEnvoy(join(dir, 'missing.pid'), join(dir, 'envoy-bootstrap.json'))).toBeUndefined();
    } finally {
      other.kill('SIGKILL');
    }
  });
});
