import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A scratch directory and a thin `openssl` wrapper for tests against the real tool. */
export class OpenSsl {
  readonly dir = mkdtempSync(join(tmpdir(), 'aviary-openssl-'));

  path(name: string): string {
    return join(this.dir, name);
  }

  write(name: string, content: string | Buffer): string {
    writeFileSync(this.path(name), content);
    return this.path(name);
  }

  read(name: string): string {
    return readFileSync(this.path(name), 'utf8');
  }

  run(...args: string[]): string {
    return execFileSync('openssl', args, { cwd: this.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Exit status and combined output, for commands expected to fail. */
  tryRun(...args: string[]): { status: number; output: string } {
    const r = spawnSync('openssl', args, { cwd: this.dir, encoding: 'utf8' });
    return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
  }

  /** `openssl req` CSR with a fresh key; `keyArgs` e.g. ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']. */
  csr(name: string, keyArgs: readonly string[], subject = '/CN=ignored.example'): string {
    this.run('req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-subj', subject, '-addext', 'subjectAltName=URI:spiffe://evil/ns/kube-system/sa/admin', '-out', `${name}.csr`);
    return this.read(`${name}.csr`);
  }

  /** A self-signed P-256 CA in `ca.crt`/`ca.key`; returns the certificate's path. */
  ca(): string {
    this.run('req', '-x509', ...P256, '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/O=aviary-test/CN=test-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    return this.path('ca.crt');
  }

  /** A P-256 workload certificate with one SPIFFE URI SAN, signed by `ca()` (call it first). */
  spiffeCert(name: string, spiffeId: string): { cert: string; key: string } {
    this.run('req', '-new', ...P256, '-nodes', '-keyout', `${name}.key`, '-subj', '/O=aviary-test', '-out', `${name}.csr`);
    this.write(`${name}.ext`, `subjectAltName=URI:${spiffeId}\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n`);
    this.run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
    return { cert: this.path(`${name}.crt`), key: this.path(`${name}.key`) };
  }

  /** A P-256 server certificate for DNS name `dns`, signed by `ca()` (call it first). */
  dnsCert(name: string, dns: string): { cert: string; key: string } {
    this.run('req', '-new', ...P256, '-nodes', '-keyout', `${name}.key`, '-subj', `/CN=${dns}`, '-out', `${name}.csr`);
    this.write(`${name}.ext`, `subjectAltName=DNS:${dns}\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n`);
    this.run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
    return { cert: this.path(`${name}.crt`), key: this.path(`${name}.key`) };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] as const;
export const RSA2048 = ['-newkey', 'rsa:2048'] as const;
