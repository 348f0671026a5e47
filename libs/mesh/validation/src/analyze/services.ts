import { resourceKey } from '@aviary/mesh-api';
import type { ServicePort } from './kube';
import { type Findings, type Snapshot } from './model';

/** Protocols Istio derives from a port name's prefix (before the first `-`), lower-cased. */
const namedProtocols = new Set(['tcp', 'udp', 'grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tls', 'mongo', 'redis', 'mysql']);
/** Ports Istio treats as TCP whatever their name (SMTP, DNS, MySQL, MongoDB): never sniffed. */
const wellKnownTcpPorts = new Set([25, 53, 3306, 27017]);
/** Values of `gateway.istio.io/managed` on Services Istio's gateway controllers create. */
const managedGatewayControllers = new Set(['istio.io-gateway-controller', 'istio.io-mesh-controller', 'istio.io-eastwest-controller']);

/** True when Istio can tell the port's protocol from its protocol, appProtocol or name (kube ConvertProtocol). */
function protocolKnown(p: ServicePort): boolean {
  if (p.protocol === 'UDP') return true;
  const name = p.appProtocol ?? p.name ?? '';
  if (p.appProtocol !== undefined && ['kubernetes.io/h2c', 'kubernetes.io/ws', 'kubernetes.io/wss'].includes(name)) return true;
  if (name.toLowerCase().startsWith('grpc-web')) return true;
  const prefix = name.split('-')[0]!.toLowerCase();
  return namedProtocols.has(prefix) || wellKnownTcpPorts.has(p.port);
}

/**
 * IST0118: a Service port whose protocol Istio cannot tell (name not `<protocol>[-suffix]`, no
 * appProtocol). IST0150 instead on ExternalName Services, where `tcp` is flagged too. Services of
 * the Istio control plane (label `istio`, or `release: istio`) and gateway-controller-managed ones
 * are skipped.
 */
export function analyzePortNames(s: Snapshot, out: Findings): void {
  for (const svc of s.kube('Service')) {
    const labels = svc.metadata.labels ?? {};
    if ('istio' in labels || labels['release'] === 'istio') continue;
    if (managedGatewayControllers.has(labels['gateway.istio.io/managed'] ?? '')) continue;
    const external = svc.spec.type === 'ExternalName';
    (svc.spec.ports ?? []).forEach((p, i) => {
      if (protocolKnown(p) && !(external && p.name === 'tcp')) return;
      if (external) {
        out.add(
          'ExternalNameServiceTypeInvalidPortName',
          'Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving TCP protocol from being forwarded correctly',
          [resourceKey(svc)],
          `spec.ports[${i}].name`,
        );
        return;
      }
      out.add(
        'PortNameIsNotUnderNamingConvention',
        `Port name ${p.name ?? ''} (port: ${p.port}, targetPort: ${p.targetPort ?? 0}) doesn't follow the naming convention of Istio port.`,
        [resourceKey(svc)],
        `spec.ports[${i}].name`,
      );
    });
  }
}

/**
 * IST0134: a ServiceEntry without addresses with a TCP (or unset) protocol port: without an
 * address the sidecar cannot tell its traffic apart (one finding per such port). Addresses
 * allocated by the control plane (`status.addresses`) count.
 */
export function analyzeServiceEntryAddresses(s: Snapshot, out: Findings): void {
  for (const se of s.of('ServiceEntry')) {
    if ((se.spec.addresses ?? []).length > 0) continue;
    const allocated = se.status?.['addresses'];
    if (Array.isArray(allocated) && allocated.length > 0) continue;
    (se.spec.ports ?? []).forEach((p, i) => {
      if ((p.protocol ?? '') !== '' && p.protocol!.toUpperCase() !== 'TCP') return;
      out.add('ServiceEntryAddressesRequired', 'ServiceEntry addresses are required for this protocol.', [resourceKey(se)], `spec.ports[${i}]`);
    });
  }
}
