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
