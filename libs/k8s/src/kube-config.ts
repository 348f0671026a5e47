import { KubeConfig } from '@kubernetes/client-node';

/**
 * A KubeConfig from a file, or (empty path) the client's default discovery: `$KUBECONFIG`,
 * `~/.kube/config`, then the in-cluster service account. The environment is read by the client
 * library, not here.
 */
export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  if (path === '') kc.loadFromDefault();
  else kc.loadFromFile(path);
  return kc;
}

/** HTTP status of a client-node error (ApiException `code`, watch errors `statusCode`), if any. */
export function statusOf(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** The API server's `Status.message` of a failed call, else the error's message. */
export function messageOf(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // not JSON
    }
  } else if (body !== null && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    return (body as { message: string }).message;
  }
  return err instanceof Error ? err.message : String(err);
}
