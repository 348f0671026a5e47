import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AviaryError } from '@aviary/errors';
import type { CaState, CaStateStore } from '@aviary/ca';
import { Issuer } from '@aviary/pki';

/**
 * Local-mode persistence of the CA: one JSON file (keys included) with mode 0600 in a 0700
 * directory, replaced atomically. A restart reads it back and keeps the same root.
 */
export class FileCaStateStore implements CaStateStore {
  readonly file: string;

  constructor(private readonly dir: string) {
    this.file = join(dir, 'ca-state.json');
  }

  async load(): Promise<CaState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AviaryError('FAILED_PRECONDITION', 'CA_STATE_UNREADABLE', `cannot read ${this.file}`, undefined, { cause: err });
    }
    try {
      const state = JSON.parse(text) as CaState;
      if (state.version !== 1 || !Array.isArray(state.roots) || typeof state.tokenKeyPem !== 'string') throw new Error('unexpected shape');
      return state;
    } catch {
      // Never echo the file: it holds private keys.
      throw new AviaryError('FAILED_PRECONDITION', 'CA_STATE_UNREADABLE', `${this.file} is not a valid CA state file`);
    }
  }

  async save(state: CaState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(state, null, 1), { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.file);
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
