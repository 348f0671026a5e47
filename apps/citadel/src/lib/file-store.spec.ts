import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CaState } from '@aviary/ca';
import { FileCaStateStore } from './file-store';

const state = (bundleVersion: number): CaState => ({ version: 1, bundleVersion, roots: [], active: -1, tokenKeyPem: `key-${bundleVersion}` });
const conflict = { kind: 'CONFLICT', code: 'CA_STATE_WRITE_CONFLICT' };

describe('FileCaStateStore (shared by citadel replicas on one machine)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'aviary-ca-store-')), 'ca');
  });
  afterEach(async () => {
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('an empty directory loads nothing; a save is read back by another store, files 0600 in a 0700 directory', async () => {
    const a = new FileCaStateStore(dir);
    expect(await a.load()).toBeUndefined();
    expect(await a.currentFile()).toBeUndefined();
    await a.save(state(1));
    expect(await new FileCaStateStore(dir).load()).toEqual(state(1));
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat((await a.currentFile())!)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['ca-state.1.json']);
  });

  it('two stores that loaded the same revision: the second save is a CONFLICT until it reloads', async () => {
    const a = new FileCaStateStore(dir);
    const b = new FileCaStateStore(dir);
    expect(await a.load()).toBeUndefined();
    expect(await b.load()).toBeUndefined();
    await a.save(state(1));
    await expect(b.save(state(2))).rejects.toMatchObject(conflict);
    expect(await b.load()).toEqual(state(1));
    await b.save(state(2));
    await expect(a.save(state(3))).rejects.toMatchObject(conflict);
    expect(await new FileCaStateStore(dir).load()).toEqual(state(2));
    // The loser left no temporary file behind.
    expect((await readdir(dir)).sort()).toEqual(['ca-state.1.json', 'ca-state.2.json']);
  });

  it('concurrent saves from one base revision: exactly one wins', async () => {
    const stores = Array.from({ length: 8 }, () => new FileCaStateStore(dir));
    await Promise.all(stores.map((s) => s.load()));
    const results = await Promise.allSettled(stores.map((s, i) => s.save(state(10 + i))));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject(conflict);
    expect(await new FileCaStateStore(dir).load()).toEqual(state(10 + won[0]!));
  });

  it('keeps the newest revisions only; a writer whose base revision was pruned gets a CONFLICT', async () => {
    const stale = new FileCaStateStore(dir);
    await stale.load();
    const a = new FileCaStateStore(dir);
    for (let v = 1; v <= 6; v++) await a.save(state(v));
    expect((await readdir(dir)).sort()).toEqual(['ca-state.3.json', 'ca-state.4.json', 'ca-state.5.json', 'ca-state.6.json']);
    // Revision 1 (stale's next) was pruned, so its name is free: the newer revisions still win.
    await expect(stale.save(state(99))).rejects.toMatchObject(conflict);
    expect(await new FileCaStateStore(dir).load()).toEqual(state(6));
    expect(await readdir(dir)).not.toContain('ca-state.1.json');
  });

  it('reads the single file of earlier versions as revision 0 and removes it on the first save', async () => {
    await mkdir(dir, { mode: 0o700 });
    await writeFile(join(dir, 'ca-state.json'), JSON.stringify(state(7)), { mode: 0o600 });
    const s = new FileCaStateStore(dir);
    expect(await s.load()).toEqual(state(7));
    await s.save(state(8));
    expect(await readdir(dir)).toEqual(['ca-state.1.json']);
    expect(await new FileCaStateStore(dir).load()).toEqual(state(8));
  });

  it('a file that is not a CA state is refused without echoing it', async () => {
    const s = new FileCaStateStore(dir);
    await s.save(state(1));
    await writeFile((await s.currentFile())!, '{"secret":"-----BEGIN PRIVATE KEY-----"}');
    const err = await s.load().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CA_STATE_UNREADABLE' });
    expect(String((err as Error).message)).not.toContain('PRIVATE');
  });
});
