import { kubectlOk, type KubeNode, type PodLike } from './node';

// What the node-tier suites deploy and run, as a user writes it: the demo service `hello` v1 and v2
// and a client in an injected namespace, and the request loop run inside the client's pod.

/** hello's v1 and v2 subsets, chosen by the pods' version label. */
export const helloSubsets = (ns: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: hello, namespace: ${ns} }
spec:
  host: hello.${ns}.svc.cluster.local
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }`;

/** The workloads, as a user writes them: nothing mesh-specific but the namespace label. */
export function workloads(image: string, ns: string): string {
  const deployment = (name: string, app: string, version: string, serviceAccount: string): string => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: ${ns} }
spec:
  replicas: 1
  selector: { matchLabels: { app: ${app}, version: ${version} } }
  template:
    metadata: { labels: { app: ${app}, version: ${version} } }
    spec:
      serviceAccountName: ${serviceAccount}
      containers:
        - name: ${app}
          image: ${image}
          imagePullPolicy: Never
          env:
            - { name: AVIARY_HOST, value: 0.0.0.0 }
            - { name: AVIARY_PORT, value: "8080" }
            - { name: AVIARY_NAME, value: ${app} }
            - { name: AVIARY_VERSION, value: ${version} }
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /, port: http }, periodSeconds: 2 }
          livenessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 5 }
`;
  const service = (app: string): string => `
apiVersion: v1
kind: Service
metadata: { name: ${app}, namespace: ${ns}, labels: { app: ${app} } }
spec:
  selector: { app: ${app} }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;
  const sa = (name: string): string => `
apiVersion: v1
kind: ServiceAccount
metadata: { name: ${name}, namespace: ${ns} }
`;
  return [sa('hello'), sa('client'), service('hello'), service('client'), deployment('hello-v1', 'hello', 'v1', 'hello'), deployment('hello-v2', 'hello', 'v2', 'hello'), deployment('client', 'client', 'v1', 'client')].join('---');
}

/** A script for `node -e` in the demo-service image: `n` GETs of `url` (and more until `minMs` have passed), outcomes counted ("<status> <body>" or "error <code>"). */
export function requests(url: string, n: number, minMs = 0): string {
  return `(async () => {
  const out = {};
  const t0 = Date.now();
  for (let i = 0; i < ${n} || Date.now() - t0 < ${minMs}; i++) {
    let k;
    try {
      const r = await fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) });
      k = r.status + ' ' + (await r.text()).trim();
    } catch (e) {
      k = 'error ' + ((e.cause && e.cause.code) || e.name);
    }
    out[k] = (out[k] || 0) + 1;
  }
  console.log(JSON.stringify(out));
})();`;
}

/** kubectl as the node-tier suites use it, bound to a node (once it is started) and the namespace of the demo workloads. */
export function meshTools(nodeOf: () => KubeNode, ns: string) {
  const kubectl = (...args: string[]): Promise<string> => kubectlOk(nodeOf(), args);
  return {
    kubectl,
    apply: (yaml: string): Promise<string> => kubectlOk(nodeOf(), ['apply', '-f', '-'], yaml),
    /** Pods of `namespace` matching `selector`, finished ones left out. */
    pods: async (namespace: string, selector: string): Promise<PodLike[]> => (JSON.parse(await kubectl('-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json')) as { items: PodLike[] }).items.filter((p) => p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed'),
    /** Runs `node -e script` in the client's app container (its traffic goes through its sidecar). */
    fromClient: async (script: string): Promise<Record<string, number>> => JSON.parse((await kubectl('-n', ns, 'exec', 'deploy/client', '-c', 'client', '--', '/usr/local/bin/node', '-e', script)).trim()) as Record<string, number>,
    /** GETs the agent admin (127.0.0.1:15000 in the pod) from the istio-proxy container. */
    agentAdmin: (pod: string, path: string): Promise<string> => kubectl('-n', ns, 'exec', pod, '-c', 'istio-proxy', '--', 'node', '-e', `fetch('http://127.0.0.1:15000${path}').then((r) => r.text()).then((t) => process.stdout.write(t))`),
  };
}

/** What the node-tier canary tests read of a Canary's status (the analysis numbers as pilot wrote them). */
export interface CanaryStatusSeen {
  readonly phase?: string;
  readonly currentWeight?: number;
  readonly stepStartedAt?: string;
  readonly lastTransitionTime?: string;
  readonly message?: string;
  readonly lastAnalysis?: { readonly time: string; readonly verdict: string; readonly reasons: readonly string[]; readonly canary: { readonly requests: number; readonly successRate: number; readonly p99Ms: number; readonly time: string; readonly windowSeconds?: number } };
}

export interface CanaryRun {
  /** When the Canary was applied (this machine's clock, which pilot and the collector share). */
  readonly appliedAt: number;
  /** Every distinct status seen (polled about every 250 ms), in order, with the time it was seen. */
  readonly timeline: readonly { readonly t: number; readonly status: CanaryStatusSeen }[];
  readonly final: CanaryStatusSeen;
  /** The route's [subset, weight] pairs once the Canary finished. */
  readonly weights: readonly (readonly [string, number])[];
  /** Outcomes of the client's requests for the whole run ("<status> <body>" or "error <code>"). */
  readonly counts: Record<string, number>;
  /** What `opts.settled` returned (run after the traffic, while the final route is still in place). */
  readonly settled?: Record<string, number>;
}

/**
 * One canary episode, as a user runs it: hello's subsets and its route at 100/0 (v1/v2), the client sending
 * requests for `path` one after another for `trafficMs`, then a Canary on that route (steps
 * 20 → 60, analysis every `intervalSeconds`, two failed analyses roll back) with the extra
 * `gates`; resolves once the Canary is Promoted or RolledBack and the traffic has ended, with the
 * status timeline, the final weights and the request outcomes. `settled` runs next, while the
 * final route is still in place; the Canary and the VirtualService are deleted afterwards.
 */
export async function runCanary(
  tools: Pick<ReturnType<typeof meshTools>, 'kubectl' | 'apply' | 'fromClient'>,
  ns: string,
  opts: { readonly path: string; readonly gates: string; readonly trafficMs: number; readonly intervalSeconds: number; readonly settled?: () => Promise<Record<string, number>> },
): Promise<CanaryRun> {
  const { kubectl, apply, fromClient } = tools;
  const host = `hello.${ns}.svc.cluster.local`;
  await apply(`
${helloSubsets(ns)}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: hello, namespace: ${ns} }
spec:
  hosts: [${host}]
  http:
    - name: hello
      route:
        - { destination: { host: ${host}, subset: v1 }, weight: 100 }
        - { destination: { host: ${host}, subset: v2 }, weight: 0 }
`);
  const traffic = fromClient(requests(`http://${host}${opts.path}`, 0, opts.trafficMs));
  await new Promise((r) => setTimeout(r, 3_000));
  const appliedAt = Date.now();
  await apply(`
apiVersion: networking.aviary.dev/v1alpha1
kind: Canary
metadata: { name: hello, namespace: ${ns} }
spec:
  target: { virtualService: hello, route: hello }
  stable: { host: ${host}, subset: v1 }
  canary: { host: ${host}, subset: v2 }
  steps: [{ weight: 20 }, { weight: 60 }]
  analysis: { interval: ${opts.intervalSeconds}s, maxDataAge: ${3 * opts.intervalSeconds}s, minRequests: 5, ${opts.gates}, failedChecksLimit: 2 }
  failurePolicy: Rollback
`);
  const timeline: { t: number; status: CanaryStatusSeen }[] = [];
  const deadline = Date.now() + 120_000;
  for (;;) {
    const object = JSON.parse(await kubectl('-n', ns, 'get', 'canary', 'hello', '-o', 'json')) as { status?: CanaryStatusSeen };
    const status = object.status ?? {};
    if (JSON.stringify(status) !== JSON.stringify(timeline.at(-1)?.status)) timeline.push({ t: Date.now(), status });
    if (status.phase === 'Promoted' || status.phase === 'RolledBack') break;
    if (Date.now() > deadline) throw new Error(`the Canary did not finish in 120 s: ${JSON.stringify(timeline.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const vs = JSON.parse(await kubectl('-n', ns, 'get', 'virtualservice', 'hello', '-o', 'json')) as { spec: { http: { route: { destination: { subset: string }; weight: number }[] }[] } };
  const weights = vs.spec.http[0]!.route.map((r) => [r.destination.subset, r.weight] as const);
  const counts = await traffic;
  const settled = opts.settled === undefined ? undefined : await opts.settled();
  await kubectl('-n', ns, 'delete', 'canary,virtualservice', 'hello');
  return { appliedAt, timeline, final: timeline.at(-1)!.status, weights, counts, ...(settled === undefined ? {} : { settled }) };
}
