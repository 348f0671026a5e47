// The Aviary control plane on a real one-node Kubernetes (tools/k8s/start-node.sh), driven the
// way a user would: images built by `npm run images` and imported into containerd, `helm install`
// of the umbrella chart into istio-system, every control-plane pod Ready, CoreDNS answering a
// Service name from a pod, the injector answering the API server over TLS; then a teardown
// that leaves nothing on the machine. Needs root; skipped otherwise.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEERS_TIMEOUT_MS } from '../k8s/cluster';
import { buildImages, canRunNode, eventually, installAviary, ISTIO_SYSTEM as NS, startNode, type BuiltImage, type KubeNode, type PodLike } from './node';

const timings: Record<string, number> = {};
const report = (k: string, ms: number): void => {
  timings[k] = ms;
  process.stderr.write(`[k8s-node] ${k}: ${(ms / 1000).toFixed(1)} s\n`);
};

describe.skipIf(!canRunNode)('Aviary on a one-node Kubernetes', () => {
  let node: KubeNode;
  let images: BuiltImage[];

  beforeAll(async () => {
    let t = Date.now();
    images = await buildImages();
    report('images', Date.now() - t);
    node = await startNode();
    report('node start (node + CoreDNS Ready)', node.startMs);
    t = Date.now();
    await node.importImages(images.map((i) => i.file));
    report('image import', Date.now() - t);
  }, PEERS_TIMEOUT_MS);

  afterAll(async () => {
    await node?.stop();
  }, 300_000);

  const kubectl = async (...args: string[]): Promise<string> => {
    const res = await node.kubectl(args);
    if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${res.stderr}`);
    return res.stdout;
  };

  it('builds fully qualified images the chart names by default', () => {
    const names = images.map((i) => i.name).sort();
    for (const app of ['citadel', 'gateway', 'injector-webhook', 'pilot', 'telemetry-collector']) {
      expect(names).toContain(`docker.io/aviary/${app}:0.1.0`);
    }
    for (const i of images) expect(i.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('helm install into istio-system: every control-plane pod becomes Ready', async () => {
    const t = Date.now();
    const { helmStderr, readyApps } = await installAviary(node, images);
    report('helm install -> all pods Ready', Date.now() - t);
    expect(helmStderr).toBe('');
    expect(readyApps).toHaveLength(6);
  }, 360_000);

  it('the ingress gateway pods carry the istio: ingressgateway label', async () => {
    const labels = JSON.parse(await kubectl('-n', NS, 'get', 'pods', '-l', 'istio=ingressgateway', '-o', 'json')) as { items: PodLike[] };
    expect(labels.items.map((p) => p.metadata.labels['app.kubernetes.io/name'])).toEqual(['gateway']);
  });

  it('CoreDNS resolves a Service name from a pod, nothing outside the cluster; pods have no default route', async () => {
    const pilotIp = (await kubectl('-n', NS, 'get', 'svc', 'aviary-pilot', '-o', 'jsonpath={.spec.clusterIP}')).trim();
    expect(pilotIp).toMatch(/^10\.96\./);
    const script = [
      "const d = require('node:dns').promises;",
      '(async () => {',
      "  console.log('pilot=' + (await d.lookup('aviary-pilot.istio-system.svc.cluster.local')).address);",
      "  console.log('short=' + (await d.lookup('aviary-pilot.istio-system')).address);",
      "  try { await d.lookup('example.com'); console.log('external=resolved'); } catch (e) { console.log('external=' + e.code); }",
      "  const routes = require('node:fs').readFileSync('/proc/net/route', 'utf8').trim().split('\\n').slice(1).map((l) => l.split('\\t')[1]);",
      "  console.log('routes=' + routes.join(','));",
      '})();',
    ].join('\n');
    const image = images.find((i) => i.app === 'telemetry-collector')!.name;
    await kubectl('run', 'dns-probe', '--restart=Never', `--image=${image}`, '--image-pull-policy=Never', '--command', '--', '/usr/local/bin/node', '-e', script);
    await eventually('dns-probe Succeeded', 120_000, async () => {
      const phase = (await kubectl('get', 'pod', 'dns-probe', '-o', 'jsonpath={.status.phase}')).trim();
      if (phase === 'Failed') throw new Error(await kubectl('logs', 'dns-probe'));
      return phase === 'Succeeded' ? phase : undefined;
    });
    const out = await kubectl('logs', 'dns-probe');
    expect(out).toContain(`pilot=${pilotIp}`);
    expect(out).toContain(`short=${pilotIp}`);
    expect(out).not.toContain('external=resolved');
    // Containment: the pod routes its subnet and the Service range only (no default route) ...
    const routes = /routes=(.*)/.exec(out)?.[1]?.split(',') ?? [];
    // (/proc/net/route destinations, little-endian hex: 10.244.0.0 and 10.96.0.0) ...
    expect(routes.sort()).toEqual(['0000600A', '0000F40A']);
    // ... and the host drops anything forwarded between the bridge and another interface.
    const contain = spawnSync('iptables', ['-t', 'mangle', '-S', 'AVIARY-NODE-CONTAIN'], { encoding: 'utf8' }).stdout;
    expect(contain).toContain('-A AVIARY-NODE-CONTAIN -i aviary0 ! -o aviary0 -j DROP');
    expect(contain).toContain('-A AVIARY-NODE-CONTAIN ! -i aviary0 -o aviary0 -j DROP');
    expect(spawnSync('iptables', ['-t', 'mangle', '-S', 'FORWARD'], { encoding: 'utf8' }).stdout).toContain('-A FORWARD -j AVIARY-NODE-CONTAIN');
    expect(spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout).not.toMatch(/CNI-|10\.244\.0\.0\/24.*MASQUERADE/);

  }, 180_000);

  it('the gateway image runs upstream Envoy 1.40 and iptables (every shared library present)', async () => {
    const image = images.find((i) => i.app === 'gateway')!.name;
    const pod = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'gateway-tools', namespace: 'default' },
      spec: {
        restartPolicy: 'Never',
        containers: [
          { name: 'envoy', image, imagePullPolicy: 'Never', command: ['/usr/local/bin/envoy', '--version'] },
          { name: 'iptables', image, imagePullPolicy: 'Never', command: ['/usr/sbin/iptables-restore', '--version'] },
          { name: 'capture', image, imagePullPolicy: 'Never', command: ['aviary-iptables', '--dry-run'] },
        ],
      },
    });
    const created = await node.kubectl(['create', '-f', '-'], pod);
    expect(created.stderr).toBe('');
    await eventually('gateway-tools Succeeded', 120_000, async () => {
      const phase = (await kubectl('get', 'pod', 'gateway-tools', '-o', 'jsonpath={.status.phase}')).trim();
      if (phase === 'Failed') throw new Error(await kubectl('get', 'pod', 'gateway-tools', '-o', 'yaml'));
      return phase === 'Succeeded' ? phase : undefined;
    });
    expect(await kubectl('logs', 'gateway-tools', '-c', 'envoy')).toMatch(/version: [0-9a-f]+\/1\.40\.\d+\/Clean\/RELEASE/);
    expect(await kubectl('logs', 'gateway-tools', '-c', 'iptables')).toMatch(/^iptables-restore v1\.8\.\d+/);
    expect(await kubectl('logs', 'gateway-tools', '-c', 'capture')).toContain(':ISTIO_INBOUND');
  }, 180_000);

  it('the API server reaches the injector webhook over TLS (dry-run pod in an injection-enabled namespace)', async () => {
    await kubectl('create', 'namespace', 'mesh');
    await kubectl('label', 'namespace', 'mesh', 'istio-injection=enabled');
    const pod = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'hello', namespace: 'mesh', labels: { app: 'hello', version: 'v1' } },
      spec: { containers: [{ name: 'hello', image: 'docker.io/aviary/telemetry-collector:0.1.0', ports: [{ containerPort: 8080 }] }] },
    });
    const injected = await eventually('injected dry-run pod', 60_000, async () => {
      const res = await node.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], pod);
      if (res.code !== 0) throw new Error(res.stderr);
      return JSON.parse(res.stdout) as { spec: { containers: Container[]; initContainers?: Container[] } };
    });
    const all = [...injected.spec.containers, ...(injected.spec.initContainers ?? [])];
    expect(all.map((c) => c.name)).toContain('istio-proxy');
    expect(all.find((c) => c.name === 'istio-proxy')?.image).toBe('docker.io/aviary/gateway:0.1.0');
  }, 120_000);

  it('tears everything down and leaves nothing on the machine', async () => {
    const dir = node.dir;
    const { audit, stopMs } = await node.stop();
    report('teardown', stopMs);
    expect(audit.stderr).not.toContain('leftover');
    expect(audit.code).toBe(0);
    // Independent of the script's own audit:
    expect(spawnSync('ip', ['link', 'show', 'aviary0']).status).not.toBe(0);
    for (const tool of ['iptables-save', 'ip6tables-save']) {
      expect(spawnSync(tool, [], { encoding: 'utf8' }).stdout).not.toMatch(/KUBE-|CNI-|AVIARY-NODE/);
    }
    expect(spawnSync('sh', ['-c', 'ls -d /sys/fs/cgroup/*/kubepods'], { encoding: 'utf8' }).stdout).toBe('');
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(dir);
    const procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    const holding = procs.filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false; // exited while we looked
      }
    });
    expect(holding).toEqual([]);
    process.stderr.write(`[k8s-node] timings ${JSON.stringify(timings)}\n`);
  }, 300_000);
});

interface Container {
  name: string;
  image: string;
}
