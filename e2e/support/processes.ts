import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { root } from './mesh';

/** One built app (dist/apps/<app>/main.js) as a child process, its JSON log lines collected. */
export class AppProcess {
  readonly lines: Array<Record<string, unknown>> = [];
  private constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ msg: line });
        }
      }
    });
    child.stderr?.on('data', (d: Buffer) => this.lines.push({ stderr: d.toString() }));
  }

  static async start(app: string, env: Record<string, string>): Promise<AppProcess> {
    const child = spawn(process.execPath, ['--enable-source-maps', join(root, 'dist/apps', app, 'main.js')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new AppProcess(child);
    const deadline = Date.now() + 30_000;
    while (!p.lines.some((l) => l['msg'] === 'ready')) {
      if (Date.now() > deadline || child.exitCode !== null) {
        // Never leave a half-started app behind: the caller has no handle to stop it.
        if (child.exitCode === null) child.kill('SIGKILL');
        throw new Error(`${app} did not become ready:\n${p.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return p;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once('exit', (c) => r(c)));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 12_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }
}
