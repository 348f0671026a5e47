import type { ChildProcess } from 'node:child_process';

/**
 * What a benchmark started must not outlive it: cleanups registered here run when the driver is
 * interrupted (SIGINT, SIGTERM), for at most 30 s in all, before it exits (130 / 143). Each
 * start registers its stop and unregisters it once stopped.
 */
const cleanups = new Set<() => unknown>();
let installed = false;

export function onInterrupt(cleanup: () => unknown): () => void {
  if (!installed) {
    installed = true;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void interrupted(signal));
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** A child stopped with `signal` on an interrupt (unless it exited first). */
export function stopOnInterrupt(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  const off = onInterrupt(() => child.kill(signal));
  child.once('exit', off);
}

async function interrupted(signal: NodeJS.Signals): Promise<void> {
  process.stderr.write(`${signal}: stopping what this benchmark started (${cleanups.size})\n`);
  const all = [...cleanups].map((c) => Promise.resolve().then(c).catch(() => undefined));
  await Promise.race([Promise.all(all), new Promise((r) => setTimeout(r, 30_000).unref())]);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}
