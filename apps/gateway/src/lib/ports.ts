import type { Listener } from '@aviary/proxy';

export interface PortConfig {
  readonly mode: 'router' | 'sidecar';
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
}

/**
 * Where a listener pilot sends is bound locally. Router: pilot's 80/8080 listeners go to
 * httpPort, 443/8443 to httpsPort, others to their own port. Sidecar: virtualInbound (15006)
 * and virtualOutbound (15001) go to the configured capture ports; per-service listeners that
 * Envoy would reach through original-dst redirection are not bound (local mode calls the
 * outbound port directly).
 */
export function portFor(c: PortConfig): (l: Listener) => number | undefined {
  return (l) => {
    if (c.mode === 'router') {
      if (l.port === 80 || l.port === 8080) return c.httpPort;
      if (l.port === 443 || l.port === 8443) return c.httpsPort;
      return l.port;
    }
    if (l.name === 'virtualInbound' || l.port === 15006) return c.inboundPort;
    if (l.name === 'virtualOutbound' || l.port === 15001) return c.outboundPort;
    return undefined;
  };
}
