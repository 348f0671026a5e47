import type { Container, HttpGetAction, JsonPatchOperation, TcpSocketAction } from './types';
import { pointer } from './pointer';

const probeKinds = [
  ['livenessProbe', 'livez'],
  ['readinessProbe', 'readyz'],
  ['startupProbe', 'startupz'],
] as const;

/** An app probe as the proxy's status server runs it (Istio's KubeAppProbers entry): one of httpGet, tcpSocket. */
export type AppProber =
  | { httpGet: HttpGetAction & { port: number }; timeoutSeconds?: number }
  | { tcpSocket: TcpSocketAction & { port: number }; timeoutSeconds?: number };

export interface ProbeRewrite {
  /** Patch operations on the pod's containers, by their index before anything is inserted. */
  readonly ops: readonly JsonPatchOperation[];
  /** `/app-health/<container>/<livez|readyz|startupz>` → the original probe, port resolved. */
  readonly probers: Readonly<Record<string, AppProber>>;
}

/**
 * Points each app container's HTTP and TCP probe at the proxy's status port, at
 * `/app-health/<container>/<livez|readyz|startupz>`, so the kubelet (which has no mesh identity)
 * still reaches the app under STRICT mTLS; the proxy runs the original probe, which is kept in
 * `probers` (the proxy's ISTIO_KUBE_APP_PROBERS). Only httpGet port, path and an HTTPS scheme are
 * replaced; periods, thresholds, host and headers stay. A tcpSocket probe becomes an httpGet of
 * its path (under STRICT mTLS Envoy would accept every TCP connect, so the probe would prove
 * nothing). A named port that the container does not declare is left alone, as Istio does.
 */
export function rewriteAppProbes(containers: readonly Container[], statusPort: number): ProbeRewrite {
  const ops: JsonPatchOperation[] = [];
  const probers: Record<string, AppProber> = {};
  containers.forEach((container, i) => {
    for (const [field, suffix] of probeKinds) {
      const probe = container[field];
      if (probe === undefined || probe === null) continue;
      const tcp = probe.tcpSocket;
      if (probe.httpGet == null && tcp != null) {
        const port = resolvePort(container, tcp.port);
        if (port === undefined || port === statusPort) continue;
        const path = `/app-health/${container.name}/${suffix}`;
        const original = { ...tcp, port };
        probers[path] = probe.timeoutSeconds === undefined ? { tcpSocket: original } : { tcpSocket: original, timeoutSeconds: probe.timeoutSeconds };
        const base = pointer('spec', 'containers', i, field);
        ops.push({ op: 'remove', path: `${base}/tcpSocket` });
        ops.push({ op: 'add', path: `${base}/httpGet`, value: { path, port: statusPort, scheme: 'HTTP' } });
        continue;
      }
      const get = probe.httpGet;
      if (get === undefined || get === null) continue;
      const port = resolvePort(container, get.port);
      if (port === undefined || port === statusPort) continue;
      const path = `/app-health/${container.name}/${suffix}`;
      const original: HttpGetAction & { port: number } = { ...get, port };
      probers[path] = probe.timeoutSeconds === undefined ? { httpGet: original } : { httpGet: original, timeoutSeconds: probe.timeoutSeconds };
      const base = pointer('spec', 'containers', i, field, 'httpGet');
      ops.push({ op: 'replace', path: `${base}/port`, value: statusPort });
      ops.push({ op: 'add', path: `${base}/path`, value: path });
      if (typeof get.scheme === 'string' && get.scheme.toUpperCase() === 'HTTPS') ops.push({ op: 'replace', path: `${base}/scheme`, value: 'HTTP' });
    }
  });
  return { ops, probers };
}

function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  if (/^[0-9]+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}
