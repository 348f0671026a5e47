import { compareStrings, type Service, type ServicePortInfo } from '@aviary/mesh-model';
import { egressHostsMatch, isHttpPort, type Ctx } from './context';

/**
 * Where a sidecar's outbound listeners listen, from the Sidecar resource's `egress` and the
 * interception mode (Istio's semantics):
 * - an egress listener with a `port` owns that port: the services its `hosts` select that have
 *   the port; its `port.protocol`, when set, decides HTTP or TCP;
 * - the egress listener without a port (or, without any egress, every visible service) gives one
 *   listener per other service port;
 * - a listener is bound to a real address (`bind_to_port`) when the proxy captures nothing
 *   (`INTERCEPTION_MODE: NONE`), when its `captureMode` is NONE or when it names a `bind`; the
 *   address is `bind`, default 127.0.0.1. Otherwise it is Istio's virtual `0.0.0.0_<port>`
 *   listener that virtualOutbound hands captured connections to.
 */

export interface PortService {
  readonly service: Service;
  readonly port: ServicePortInfo;
}

export interface EgressPlan {
  readonly port: number;
  /** Sorted by hostname. */
  readonly services: readonly PortService[];
  /** The listener speaks HTTP (an HCM with RDS `<port>`) rather than TCP proxy. */
  readonly http: boolean;
  /** The address it binds to; undefined for a virtual listener on 0.0.0.0 (captured traffic). */
  readonly bind: string | undefined;
}

const LOCALHOST = '127.0.0.1';

function portServices(services: readonly Service[], keep: (p: ServicePortInfo) => boolean): Map<number, PortService[]> {
  const byPort = new Map<number, PortService[]>();
  for (const service of services) {
    for (const port of service.ports) {
      if (!keep(port)) continue;
      const list = byPort.get(port.number);
      if (list) list.push({ service, port });
      else byPort.set(port.number, [{ service, port }]);
    }
  }
  return byPort;
}

function bindOf(ctx: Ctx, listener: { bind?: string | undefined; captureMode?: string | undefined } | undefined): string | undefined {
  if (ctx.interceptionNone || listener?.captureMode === 'NONE' || listener?.bind !== undefined) return listener?.bind ?? LOCALHOST;
  return undefined;
}

export function planEgress(ctx: Ctx): EgressPlan[] {
  const ns = ctx.proxy.namespace;
  const visible = ctx.visibleServices();
  const sidecar = ctx.sidecarResource();
  const egress = sidecar?.spec.egress ?? [];
  const plans: EgressPlan[] = [];
  const claimed = new Set<number>();
  egress.forEach((eg, i) => {
    const number = eg.port?.number;
    if (number === undefined) return;
    if (eg.bind?.startsWith('unix://')) {
      ctx.problem(`${sidecar!.key} egress[${i}]: unix:// bind ${eg.bind} is not supported; listener skipped`);
      return;
    }
    if (claimed.has(number)) {
      ctx.problem(`${sidecar!.key} egress[${i}]: port ${number} already has an egress listener; skipped`);
      return;
    }
    claimed.add(number);
    if (eg.port?.targetPort !== undefined) ctx.problem(`${sidecar!.key} egress[${i}]: port.targetPort applies to ingress only; ignored`);
    const selected = visible.filter((s) => egressHostsMatch(eg.hosts, s, ns));
    const services = portServices(selected, (p) => p.number === number).get(number) ?? [];
    const protocol = eg.port?.protocol?.toUpperCase();
    const http = protocol !== undefined ? isHttpPort({ protocol }) : services.some((s) => isHttpPort(s.port));
    if (services.length === 0) ctx.problem(`${sidecar!.key} egress[${i}]: no service selected by its hosts has port ${number}`);
    plans.push({ port: number, services, http, bind: bindOf(ctx, eg) });
  });

  const catchAll = egress.find((eg) => eg.port?.number === undefined);
  if (egress.length === 0 || catchAll !== undefined) {
    if (catchAll?.bind?.startsWith('unix://')) {
      ctx.problem(`${sidecar!.key} egress without port: unix:// bind ${catchAll.bind} is not supported; its listeners are skipped`);
    } else {
      const selected = catchAll ? visible.filter((s) => egressHostsMatch(catchAll.hosts, s, ns)) : visible;
      const bind = bindOf(ctx, catchAll);
      const all = portServices(selected, (p) => !claimed.has(p.number));
      const http = new Set([...all].filter(([, list]) => list.some((s) => isHttpPort(s.port))).map(([n]) => n));
      for (const [number, services] of all) {
        if (http.has(number)) {
          const tcp = services.filter((s) => !isHttpPort(s.port));
          if (tcp.length > 0) ctx.problem(`port ${number}: TCP services ${tcp.map((e) => e.service.hostname).join(', ')} share the port with HTTP services; HTTP wins`);
          plans.push({ port: number, services: services.filter((s) => isHttpPort(s.port)), http: true, bind });
        } else {
          if (services.length > 1) ctx.problem(`port ${number}: several TCP services (${services.map((e) => e.service.hostname).join(', ')}); ${services[0]!.service.hostname} is used`);
          plans.push({ port: number, services, http: false, bind });
        }
      }
    }
  }
  for (const p of plans) (p.services as PortService[]).sort((a, b) => compareStrings(a.service.hostname, b.service.hostname));
  return plans.sort((a, b) => a.port - b.port);
}
