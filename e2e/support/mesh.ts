import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '..', '..');

/** A local mesh started with the real launcher (dist/tools/local-mesh), in a temp state dir. */
export class LocalMesh {
  output = '';
  private constructor(
    readonly child: ChildProcess,
    readonly stateDir: string,
    private readonly ownsState: boolean,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  static async start(opts: { stateDir?: string; args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<LocalMesh> {
    const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'aviary-e2e-mesh-'));
    const child = spawn(process.execPath, [join(root, 'dist/tools/local-mesh/main.js'), '--state-dir', stateDir, '--nats-port', '0', ...(opts.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    const mesh = new LocalMesh(child, stateDir, opts.stateDir === undefined);
    try {
      await mesh.waitFor('Aviary local mesh is ready', 90_000);
    } catch (err) {
      await mesh.stop(); // never leave a half-started mesh behind
      throw err;
    }
    return mesh;
  }

  get token(): string {
    return readFileSync(join(this.stateDir, 'admin-token'), 'utf8').trim();
  }

  get natsUrl(): string {
    const m = /nats-server\s+(nats:\/\/\S+)/.exec(this.output);
    if (m === null) throw new Error('nats URL not printed');
    return m[1] as string;
  }

  /** Connection options of the launcher's read-only NATS observer (<state-dir>/nats-observer.json). */
  get natsObserver(): { servers: string; user: string; pass: string } {
    const o = JSON.parse(readFileSync(join(this.stateDir, 'nats-observer.json'), 'utf8')) as { url: string; user: string; password: string };
    return { servers: o.url, user: o.user, pass: o.password };
  }

  async waitFor(text: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes(text)) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`waiting for "${text}":\n${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGINT, as Ctrl-C would; resolves with the launcher's exit code. */
  async stop(opts: { keepState?: boolean } = {}): Promise<number | null> {
    let code = this.child.exitCode;
    if (code === null && this.child.signalCode === null) {
      const exited = new Promise<number | null>((r) => this.child.once('exit', (c) => r(c)));
      this.child.kill('SIGINT');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      code = await exited;
      clearTimeout(timer);
    }
    if (this.ownsState && opts.keepState !== true) rmSync(this.stateDir, { recursive: true, force: true });
    return code;
  }
}
