import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AviaryError } from '@aviary/errors';
import type { CaState, CaStateStore } from '@aviary/ca';
import { Issuer } from '@aviary/pki';

/** The state file of one revision: `ca-state.<revision>.json`. */
const REVISION_FILE = /^ca-state\.(\d{1,15})\.json$/;
/** The single state file written before revisions existed; read as revision 0, removed by the first save. */
const LEGACY_FILE = 'ca-state.json';
/** Revisions kept besides the newest (a reader that listed the directory just before a save still finds its file). */
const KEEP_REVISIONS = 3;

const missing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Local-mode persistence of the CA: one JSON file per revision (keys included) with mode 0600 in
 * a 0700 directory, `ca-state.<revision>.json`; the highest revision is the state.
 *
 * Several citadel processes on one machine may share the directory (the launcher's
 * `--citadel-replicas`): a save is compare-and-set on the revision this store last loaded or
 * wrote. The new revision's file is made with `link(2)` from a private temporary file, which
 * fails when that name exists, so of two writers that loaded the same revision exactly one wins;
 * the other gets `CONFLICT` (the CA reloads and reapplies its change). A writer whose base
 * revision was already pruned finds a newer revision after its link and also gets `CONFLICT`.
 * No lock file: a writer killed at any point leaves at most a stray temporary file.
 */
export class FileCaStateStore implements CaStateStore {
  /** The revision this store last loaded or wrote (0: none, or the legacy file). */
  private revision = 0;

  constructor(private readonly dir: string) {}

  /** The file holding the newest stored state (undefined when there is none). */
  async currentFile(): Promise<string | undefined> {
    const { newest, legacy } = await this.list();
    if (newest !== undefined) return join(this.dir, revisionFile(newest));
    return legacy ? join(this.dir, LEGACY_FILE) : undefined;
  }

  async load(): Promise<CaState | undefined> {
    // A concurrent save may prune the file just listed (only after three newer ones): list again.
    for (let attempt = 0; ; attempt++) {
      const { newest, legacy } = await this.list();
      const file = newest !== undefined ? revisionFile(newest) : legacy ? LEGACY_FILE : undefined;
      if (file === undefined) {
        this.revision = 0;
        return undefined;
      }
      let text: string;
      try {
        text = await readFile(join(this.dir, file), 'utf8');
      } catch (err) {
        if (missing(err) && attempt < 5) continue;
        throw new AviaryError('FAILED_PRECONDITION', 'CA_STATE_UNREADABLE', `cannot read ${join(this.dir, file)}`, undefined, { cause: err });
      }
      const state = parseState(text, join(this.dir, file));
      this.revision = newest ?? 0;
      return state;
    }
  }

  async save(state: CaState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const next = this.revision + 1;
    const tmp = join(this.dir, `.ca-state.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, JSON.stringify(state, null, 1), { mode: 0o600 });
    await chmod(tmp, 0o600);
    const target = join(this.dir, revisionFile(next));
    try {
      await link(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw conflict(this.dir, next);
      throw new AviaryError('UNAVAILABLE', 'CA_STATE_WRITE_FAILED', `cannot write ${target}`, undefined, { cause: err });
    }
    await unlink(tmp).catch(() => undefined);
    const { newest, revisions, legacy } = await this.list();
    if (newest !== undefined && newest > next) {
      // Our base revision had been pruned, so the name was free: a newer state exists.
      await unlink(target).catch(() => undefined);
      throw conflict(this.dir, next);
    }
    this.revision = next;
    for (const r of revisions.filter((r) => r < next - KEEP_REVISIONS)) await unlink(join(this.dir, revisionFile(r))).catch(() => undefined);
    if (legacy) await unlink(join(this.dir, LEGACY_FILE)).catch(() => undefined);
  }

  private async list(): Promise<{ newest: number | undefined; revisions: number[]; legacy: boolean }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (missing(err)) return { newest: undefined, revisions: [], legacy: false };
      throw new AviaryError('FAILED_PRECONDITION', 'CA_STATE_UNREADABLE', `cannot list ${this.dir}`, undefined, { cause: err });
    }
    const revisions = names.flatMap((n) => {
      const m = REVISION_FILE.exec(n);
      return m === null ? [] : [Number(m[1])];
    });
    return { newest: revisions.length === 0 ? undefined : Math.max(...revisions), revisions, legacy: names.includes(LEGACY_FILE) };
  }
}

const revisionFile = (revision: number): string => `ca-state.${revision}.json`;

const conflict = (dir: string, revision: number): AviaryError =>
  new AviaryError('CONFLICT', 'CA_STATE_WRITE_CONFLICT', `another citadel wrote revision ${revision} of the CA state in ${dir} first`);

function parseState(text: string, file: string): CaState {
  try {
    const state = JSON.parse(text) as CaState;
    if (state.version !== 1 || !Array.isArray(state.roots) || typeof state.tokenKeyPem !== 'string') throw new Error('unexpected shape');
    return state;
  } catch {
    // Never echo the file: it holds private keys.
    throw new AviaryError('FAILED_PRECONDITION', 'CA_STATE_UNREADABLE', `${file} is not a valid CA state file`);
  }
}

/** Loads a plug-in CA from a directory in Istio's cacerts layout. */
export async function loadCaCertsDir(dir: string): Promise<Issuer> {
  const read = async (name: string, optional = false): Promise<string | undefined> => {
    try {
      return await readFile(join(dir, name), 'utf8');
    } catch (err) {
      if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AviaryError('FAILED_PRECONDITION', 'CA_LOAD_FAILED', `cannot read ${join(dir, name)} (Istio cacerts layout: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)`);
    }
  };
  const [caCertPem, caKeyPem, rootCertPem, certChainPem] = await Promise.all([read('ca-cert.pem'), read('ca-key.pem'), read('root-cert.pem'), read('cert-chain.pem', true)]);
  return Issuer.fromPem({ caCertPem: caCertPem!, caKeyPem: caKeyPem!, rootCertPem: rootCertPem!, ...(certChainPem === undefined ? {} : { certChainPem }) });
}
