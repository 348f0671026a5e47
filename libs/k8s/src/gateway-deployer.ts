import { AppsV1Api, CoreV1Api, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject, type V1EnvVar, type V1PodSpec, type V1Service } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { mergeOverlay, parseOverlays, type GatewayOverlays } from './gateway-overlay';
import { statusOf, messageOf } from './kube-config';
import { GATEWAY_NAME_LABEL, type GatewayDeployment } from '@aviary/mesh-model';
import type { Logger } from '@aviary/observability';

/** The class label Istio puts next to the gateway-name label on a deployed Gateway's objects. */
export const GATEWAY_CLASS_LABEL = 'gateway.networking.k8s.io/gateway-class-name';
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'aviary-pilot' };
const FIELD_MANAGER = 'aviary-pilot';

/** The pod template a deployed Gateway runs (rendered by the chart): labels, annotations, spec. */
export interface GatewayPodTemplate {
  readonly metadata?: { readonly labels?: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>> };
  readonly spec: V1PodSpec;
}

/** What the cluster says about a deployed Gateway: its Service address and whether a proxy is available. */
export interface GatewayInfra {
  readonly address?: { readonly type: 'IPAddress' | 'Hostname'; readonly value: string };
  readonly available: boolean;
  /** Why the Gateway's parametersRef cannot be used (the Gateway is not accepted: InvalidParameters). */
  readonly invalidParameters?: string;
}

/** Reads a pod template file; refuses one without a container (the first one is the router). */
export function parsePodTemplate(text: string, file: string): GatewayPodTemplate {
  const t = parse(text) as GatewayPodTemplate | null;
  if (t === null || typeof t !== 'object' || typeof t.spec !== 'object' || !Array.isArray(t.spec.containers) || t.spec.containers.length === 0) {
    throw new Error(`${file}: a pod template needs spec.containers (the first is the gateway router)`);
  }
  return t;
}

/** `<gateway>-<class>`, Istio's name for a deployed Gateway's Deployment, Service and ServiceAccount. */
export function deploymentName(d: GatewayDeployment): string {
  return `${d.name}-${d.className}`;
}

/**
 * The objects automated deployment keeps for one Gateway, in apply order: a ServiceAccount (the
 * proxy's SPIFFE identity), a Deployment of the pod template whose router carries the label the
 * Gateway's Istio Gateways select, and a Service of the listener ports (targetPort: the port the
 * router binds the listener at). All owned by the Gateway, so deleting it deletes them.
 * `spec.infrastructure` labels and annotations go on every object and the pods (pilot's own
 * labels win a clash); then the parametersRef ConfigMap's overlays are merged onto each object.
 */
export function gatewayObjects(d: GatewayDeployment, uid: string, template: GatewayPodTemplate, natsPassword: string, overlays: GatewayOverlays = {}): KubernetesObject[] {
  const name = deploymentName(d);
  const owner = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: d.name, uid, controller: true };
  const labels = { ...d.infrastructure?.labels, ...MANAGED_BY, [GATEWAY_NAME_LABEL]: d.name, [GATEWAY_CLASS_LABEL]: d.className };
  const annotations = d.infrastructure?.annotations;
  const metadata = { name, namespace: d.namespace, labels, ...(annotations !== undefined && { annotations: { ...annotations } }), ownerReferences: [owner] };
  const [router, ...sidecars] = template.spec.containers;
  const env: V1EnvVar[] = [
    ...(router!.env ?? []).filter((e) => e.name !== 'AVIARY_LABELS' && e.name !== 'AVIARY_NATS_PASSWORD'),
    // The proxy's labels in its xDS node metadata: what the Gateway's Istio Gateways select.
    { name: 'AVIARY_LABELS', value: `${GATEWAY_NAME_LABEL}=${d.name}` },
    ...(natsPassword === '' ? [] : [{ name: 'AVIARY_NATS_PASSWORD', value: natsPassword }]),
  ];
  const listenerPorts = d.ports.map((p) => ({ name: p.name, containerPort: p.targetPort, protocol: 'TCP' }));
  const templatePorts = (router!.ports ?? []).filter((p) => !d.ports.some((l) => l.targetPort === p.containerPort));
  const objects: [KubernetesObject, KubernetesObject, KubernetesObject] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata,
      spec: {
        replicas: 1,
        selector: { matchLabels: { [GATEWAY_NAME_LABEL]: d.name } },
        template: {
          // Only pilot's labels: the template's could make another Service (the chart's ingress) select these pods.
          metadata: { labels, annotations: { ...template.metadata?.annotations, ...annotations } },
          spec: { ...template.spec, serviceAccountName: name, containers: [{ ...router!, env, ports: [...templatePorts, ...listenerPorts] }, ...sidecars] },
        },
      },
    } as KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata,
      spec: { type: 'ClusterIP', selector: { [GATEWAY_NAME_LABEL]: d.name }, ports: d.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: 'TCP' })) },
    } as KubernetesObject,
  ];
  const [serviceAccount, deployment, service] = objects;
  return [
    overlays.serviceAccount === undefined ? serviceAccount : mergeOverlay(serviceAccount, overlays.serviceAccount),
    overlays.deployment === undefined ? deployment : mergeOverlay(deployment, overlays.deployment),
    overlays.service === undefined ? service : mergeOverlay(service, overlays.service),
  ];
}

export interface GatewayDeployerOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly template: GatewayPodTemplate;
  readonly natsPassword: string;
  /** The Gateway's uid (its objects' owner); undefined when it is gone. */
  readonly gatewayUid: (namespace: string, name: string) => Promise<string | undefined>;
  /** Only the leader writes; every replica reads the infrastructure for the status. */
  readonly isLeader: () => boolean;
  /** Called when a Gateway's address or availability changes. */
  readonly onInfraChange: () => void;
  /** How often Gateways not yet available (or without an address) are read again. */
  readonly pollMs?: number;
  /** How often the parametersRef ConfigMaps of deployed Gateways are read again (their edits take effect). */
  readonly parametersPollMs?: number;
}

/**
 * Istio-style automated deployment of Gateway API Gateways (Kubernetes mode): for every accepted
 * Gateway of Aviary's classes the leader applies (server-side apply, field manager aviary-pilot)
 * the objects of `gatewayObjects`; the Gateway's ownerReference makes Kubernetes' garbage
 * collector delete them with it, and this deployer deletes those of a Gateway that is no longer
 * Aviary's (or no longer accepted). Every replica reads each Deployment's availability and
 * Service ClusterIP (`infra`), which the status writer turns into `status.addresses` and the
 * Gateway's Programmed condition.
 */
export class GatewayDeployer {
  private readonly objects: KubernetesObjectApi;
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly applied = new Map<string, string>();
  private readonly infraByKey = new Map<string, GatewayInfra>();
  private wanted: readonly GatewayDeployment[] = [];
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: GatewayDeployerOptions) {
    this.objects = KubernetesObjectApi.makeApiClient(opts.kubeConfig);
    this.apps = opts.kubeConfig.makeApiClient(AppsV1Api);
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
  }

  /** A deployed Gateway's infrastructure (undefined: not one automated deployment serves). */
  infra(namespace: string, name: string): GatewayInfra | undefined {
    if (!this.wanted.some((d) => d.namespace === namespace && d.name === name)) return undefined;
    return this.infraByKey.get(`${namespace}/${name}`) ?? { available: false };
  }

  /** Called with each model's deployments; reconciles in the background (serialised). */
  sync(deployments: readonly GatewayDeployment[]): Promise<void> {
    this.wanted = deployments;
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      await this.reconcile();
    } while (this.again && !this.stopped);
    clearTimeout(this.timer);
    const pending = this.wanted.some((d) => {
      const i = this.infraByKey.get(`${d.namespace}/${d.name}`);
      return i === undefined || !i.available || i.address === undefined;
    });
    const parameterized = this.wanted.some((d) => d.infrastructure?.parametersRef !== undefined);
    const next = pending ? (this.opts.pollMs ?? 1_000) : parameterized ? (this.opts.parametersPollMs ?? 10_000) : undefined;
    if (next !== undefined && !this.stopped) this.timer = setTimeout(() => void this.sync(this.wanted), next);
  }

  private async reconcile(): Promise<void> {
    const wanted = this.wanted;
    const keys = new Set(wanted.map((d) => `${d.namespace}/${d.name}`));
    let changed = false;
    const overlays = new Map<string, GatewayOverlays | string>();
    for (const d of wanted) overlays.set(`${d.namespace}/${d.name}`, await this.overlays(d));
    if (this.opts.isLeader()) {
      for (const d of wanted) {
        const o = overlays.get(`${d.namespace}/${d.name}`)!;
        // Unusable parameters: the Gateway is not accepted; what runs is left as it was.
        if (typeof o !== 'string') await this.apply(d, o);
      }
      for (const key of [...this.applied.keys()]) if (!keys.has(key.split('|')[0]!)) await this.remove(key);
    }
    for (const d of wanted) {
      const key = `${d.namespace}/${d.name}`;
      const o = overlays.get(key)!;
      const next = { ...(await this.read(d)), ...(typeof o === 'string' && { invalidParameters: o }) };
      const before = this.infraByKey.get(key);
      if (JSON.stringify(before) !== JSON.stringify(next)) {
        this.infraByKey.set(key, next);
        changed = true;
      }
    }
    for (const key of [...this.infraByKey.keys()]) if (!keys.has(key)) this.infraByKey.delete(key);
    if (changed) this.opts.onInfraChange();
  }

  /** The overlays of a Gateway's parametersRef ConfigMap, or why they cannot be used. */
  private async overlays(d: GatewayDeployment): Promise<GatewayOverlays | string> {
    const ref = d.infrastructure?.parametersRef;
    if (ref === undefined) return {};
    const where = `ConfigMap ${d.namespace}/${ref.name}`;
    try {
      const cm = await this.core.readNamespacedConfigMap({ name: ref.name, namespace: d.namespace });
      return parseOverlays(cm.data, where);
    } catch (err) {
      if (statusOf(err) === 404) return `${where} (spec.infrastructure.parametersRef) does not exist`;
      if (statusOf(err) === undefined) return messageOf(err);
      this.opts.logger.warn({ gateway: `${d.namespace}/${d.name}`, status: statusOf(err), error: messageOf(err) }, 'could not read the gateway parameters');
      return `${where} could not be read: ${messageOf(err)}`;
    }
  }

  private async apply(d: GatewayDeployment, overlays: GatewayOverlays): Promise<void> {
    const key = `${d.namespace}/${d.name}|${deploymentName(d)}`;
    try {
      const uid = await this.opts.gatewayUid(d.namespace, d.name);
      if (uid === undefined) return;
      const objects = gatewayObjects(d, uid, this.opts.template, this.opts.natsPassword, overlays);
      const fingerprint = JSON.stringify(objects);
      if (this.applied.get(key) === fingerprint) return;
      for (const o of objects) await this.objects.patch(o, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      this.applied.set(key, fingerprint);
      this.opts.logger.info({ gateway: `${d.namespace}/${d.name}`, deployment: deploymentName(d), ports: d.ports.map((p) => p.port) }, 'gateway deployed');
    } catch (err) {
      this.applied.delete(key);
      this.opts.logger.warn({ gateway: `${d.namespace}/${d.name}`, status: statusOf(err), error: messageOf(err) }, 'could not deploy the gateway; retried on the next model or poll');
    }
  }

  /** Deletes what this deployer applied for a Gateway that is no longer deployed. */
  private async remove(key: string): Promise<void> {
    const [gateway, name] = key.split('|') as [string, string];
    const namespace = gateway.split('/')[0]!;
    try {
      for (const o of [
        { apiVersion: 'v1', kind: 'Service' },
        { apiVersion: 'apps/v1', kind: 'Deployment' },
        { apiVersion: 'v1', kind: 'ServiceAccount' },
      ]) {
        try {
          await this.objects.delete({ ...o, metadata: { name, namespace } });
        } catch (err) {
          if (statusOf(err) !== 404) throw err;
        }
      }
      this.applied.delete(key);
      this.opts.logger.info({ gateway, deployment: name }, 'gateway deployment removed');
    } catch (err) {
      this.opts.logger.warn({ gateway, status: statusOf(err), error: messageOf(err) }, 'could not remove the gateway deployment');
    }
  }

  private async read(d: GatewayDeployment): Promise<GatewayInfra> {
    const name = deploymentName(d);
    try {
      const [deployment, service] = await Promise.all([this.apps.readNamespacedDeployment({ name, namespace: d.namespace }), this.core.readNamespacedService({ name, namespace: d.namespace })]);
      return { available: (deployment.status?.availableReplicas ?? 0) > 0, ...addressOf(service) };
    } catch (err) {
      if (statusOf(err) !== 404) this.opts.logger.warn({ gateway: `${d.namespace}/${d.name}`, error: messageOf(err) }, 'could not read the gateway deployment');
      return { available: false };
    }
  }
}

/**
 * The address a deployed Gateway reports: a LoadBalancer Service's ingress (IP or hostname) once
 * the cluster has assigned one, otherwise the Service's cluster IP (ClusterIP and NodePort types).
 */
export function addressOf(service: V1Service): Pick<GatewayInfra, 'address'> {
  if (service.spec?.type === 'LoadBalancer') {
    const ingress = service.status?.loadBalancer?.ingress?.[0];
    if (ingress?.ip !== undefined && ingress.ip !== '') return { address: { type: 'IPAddress', value: ingress.ip } };
    if (ingress?.hostname !== undefined && ingress.hostname !== '') return { address: { type: 'Hostname', value: ingress.hostname } };
    return {};
  }
  const ip = service.spec?.clusterIP;
  return ip !== undefined && ip !== '' && ip !== 'None' ? { address: { type: 'IPAddress', value: ip } } : {};
}
