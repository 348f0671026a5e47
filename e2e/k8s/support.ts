// Helpers shared by the e2e/k8s suites that run the apps as local processes against a real
// kube-apiserver (cluster.ts): waiting, namespaces, Deployments, openssl-made TLS files.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CoreV1Api, V1Deployment } from '@kubernetes/client-node';
import { eventually } from '../support/eventually';

const execFileP = promisify(execFile);

export { eventually };

/** Creates a namespace and waits for its default ServiceAccount (the controller manager makes it; Pods need it). */
export async function createNamespace(core: CoreV1Api, name: string, labels: Record<string, string> = {}): Promise<void> {
  await core.createNamespace({ body: { metadata: { name, labels } } });
  await eventually(`default ServiceAccount in ${name}`, async () => (await core.readNamespacedServiceAccount({ name: 'default', namespace: name })).metadata?.name);
}

export function deployment(name: string, replicas: number, podLabels: Record<string, string> = {}): V1Deployment {
  const labels = { app: name, ...podLabels };
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'registry.example.org/app:1', ports: [{ containerPort: 8080, name: 'http' }] }] } },
    },
  };
}

export interface TlsFiles {
  readonly dir: string;
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
}

/** A CA and a serving certificate for 127.0.0.1/localhost, made with openssl (EC P-256). */
export async function makeServingCert(): Promise<TlsFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'aviary-tls-'));
  const f = (n: string): string => join(dir, n);
  const ssl = (args: string[]): Promise<unknown> => execFileP('openssl', args, { cwd: dir });
  await ssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('ca.key')]);
  await ssl(['req', '-x509', '-new', '-key', f('ca.key'), '-subj', '/CN=aviary-e2e-webhook-ca', '-days', '2', '-out', f('ca.crt'), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await ssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('tls.key')]);
  await ssl(['req', '-new', '-key', f('tls.key'), '-subj', '/CN=127.0.0.1', '-out', f('tls.csr')]);
  await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  await ssl(['x509', '-req', '-in', f('tls.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('tls.crt')]);
  return { dir, caCert: f('ca.crt'), cert: f('tls.crt'), key: f('tls.key') };
}

/**
 * A kubeconfig that authenticates as a ServiceAccount (a TokenRequest token), so an app run as a
 * local process gets exactly the RBAC the chart grants its in-cluster identity.
 */
export async function serviceAccountKubeconfig(
  cluster: { server: string; caFile: string; kubectl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> },
  namespace: string,
  serviceAccount: string,
  dir: string,
): Promise<string> {
  const res = await cluster.kubectl(['create', 'token', serviceAccount, '-n', namespace, '--duration', '1h']);
  if (res.code !== 0) throw new Error(`kubectl create token ${serviceAccount}: ${res.stderr}`);
  const file = join(dir, `${serviceAccount}.kubeconfig`);
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: cluster.server, 'certificate-authority': cluster.caFile } }],
      users: [{ name: serviceAccount, user: { token: res.stdout.trim() } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: serviceAccount, namespace } }],
      'current-context': 'e2e',
    }),
    { mode: 0o600 },
  );
  return file;
}
