import { type ClientTLSSettings, type ConnectionPoolSettings, type DestinationRule, type LoadBalancerSettings, type OutlierDetection, type TrafficPolicy } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkDuration, checkExportTo, checkLabels, checkPort, checkWorkloadSelector, isIstioLabel, wildcardDomainError } from './checks';

/** Istio validateDestinationRule. */
export function validateDestinationRule(dr: DestinationRule, r: Report): void {
  const spec = dr.spec;
  const problem = wildcardDomainError(spec.host);
  if (problem !== undefined) r.error('spec.host', problem);
  checkTrafficPolicy(r, 'spec.trafficPolicy', spec.trafficPolicy);
  const names = new Set<string>();
  (spec.subsets ?? []).forEach((s, i) => {
    const p = idx('spec.subsets', i);
    if (s.name === '') r.error(key(p, 'name'), 'subset name is required');
    else if (!isIstioLabel(s.name)) r.error(key(p, 'name'), `subset name ${JSON.stringify(s.name)} is not a valid DNS-1123 label`);
    if (names.has(s.name)) r.error(key(p, 'name'), `duplicate subset name ${JSON.stringify(s.name)}`);
    names.add(s.name);
    checkLabels(r, key(p, 'labels'), s.labels);
    checkTrafficPolicy(r, key(p, 'trafficPolicy'), s.trafficPolicy);
  });
  checkExportTo(r, 'spec.exportTo', spec.exportTo);
  if (spec.workloadSelector !== undefined) {
    checkWorkloadSelector(r, 'spec.workloadSelector.matchLabels', spec.workloadSelector.matchLabels);
    if ((spec.exportTo ?? []).some((ns) => ns !== '.')) r.error('spec.exportTo', 'exportTo with a workloadSelector can only be "."');
  }
}

export function checkTrafficPolicy(r: Report, p: string, tp: TrafficPolicy | undefined): void {
  if (tp === undefined) return;
  if (Object.keys(tp).length === 0) r.error(p, 'traffic policy must have at least one field');
  checkLoadBalancer(r, key(p, 'loadBalancer'), tp.loadBalancer);
  checkConnectionPool(r, key(p, 'connectionPool'), tp.connectionPool);
  checkOutlierDetection(r, key(p, 'outlierDetection'), tp.outlierDetection);
  checkClientTls(r, key(p, 'tls'), tp.tls);
  const ports = new Set<number>();
  (tp.portLevelSettings ?? []).forEach((pl, i) => {
    const pp = idx(key(p, 'portLevelSettings'), i);
    if (pl.port?.number === undefined) r.error(key(pp, 'port'), 'portLevelSettings must have a port number');
    else {
      checkPort(r, key(key(pp, 'port'), 'number'), pl.port.number);
      if (ports.has(pl.port.number)) r.error(key(key(pp, 'port'), 'number'), `duplicate port ${pl.port.number} in portLevelSettings`);
      ports.add(pl.port.number);
    }
    checkLoadBalancer(r, key(pp, 'loadBalancer'), pl.loadBalancer);
    checkConnectionPool(r, key(pp, 'connectionPool'), pl.connectionPool);
    checkOutlierDetection(r, key(pp, 'outlierDetection'), pl.outlierDetection);
    checkClientTls(r, key(pp, 'tls'), pl.tls);
  });
  if (tp.tunnel !== undefined) {
    const tunnel = tp.tunnel;
    if (tunnel.protocol !== undefined && tunnel.protocol !== 'CONNECT' && tunnel.protocol !== 'POST') {
      r.error(key(key(p, 'tunnel'), 'protocol'), `tunnel protocol ${JSON.stringify(tunnel.protocol)} is not supported, use CONNECT or POST`);
    }
    if (tunnel.targetHost === '') r.error(key(key(p, 'tunnel'), 'targetHost'), 'tunnel target host is required');
    checkPort(r, key(key(p, 'tunnel'), 'targetPort'), tunnel.targetPort);
  }
}

function checkLoadBalancer(r: Report, p: string, lb: LoadBalancerSettings | undefined): void {
  if (lb === undefined) return;
  if (lb.simple !== undefined && lb.consistentHash !== undefined) r.error(p, 'only one of simple or consistentHash may be set');
  const ch = lb.consistentHash;
  if (ch !== undefined) {
    const cp = key(p, 'consistentHash');
    const keys = (['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const).filter((k) => ch[k] !== undefined && ch[k] !== false);
    if (keys.length !== 1) r.error(cp, 'consistentHash must set exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName');
    if (ch.ringHash !== undefined && ch.maglev !== undefined) r.error(key(cp, 'maglev'), 'consistentHash may set only one of ringHash or maglev');
    const table = ch.maglev?.tableSize ?? (ch.maglev !== undefined ? 0 : undefined);
    if (table !== undefined) {
      const tp = key(key(cp, 'maglev'), 'tableSize');
      if (table === 0) r.error(tp, 'tableSize must be set for maglev');
      else if (table >= 5000011) r.error(tp, 'tableSize must be less than 5000011 for maglev');
      else if (!isPrime(table)) r.error(tp, `tableSize ${table} must be a prime number for maglev`);
    }
    if (ch.minimumRingSize !== undefined && (ch.ringHash !== undefined || ch.maglev !== undefined)) r.error(key(cp, 'minimumRingSize'), 'minimumRingSize cannot be set together with ringHash or maglev');
    if (ch.httpCookie !== undefined) {
      if (ch.httpCookie.name === '') r.error(key(key(cp, 'httpCookie'), 'name'), 'cookie name is required');
      checkDuration(r, key(key(cp, 'httpCookie'), 'ttl'), ch.httpCookie.ttl, { allowZero: true });
    }
  }
  const loc = lb.localityLbSetting;
  if (loc !== undefined) {
    const lp = key(p, 'localityLbSetting');
    if ((loc.distribute ?? []).length > 0 && (loc.failover ?? []).length > 0) r.error(lp, "can not simultaneously set 'distribute' and 'failover'");
    (loc.distribute ?? []).forEach((d, i) => {
      const total = Object.values(d.to ?? {}).reduce((a, b) => a + b, 0);
      if (total !== 100) r.error(key(idx(key(lp, 'distribute'), i), 'to'), `total locality weight must be 100 (got ${total})`);
    });
    (loc.failover ?? []).forEach((f, i) => {
      if (f.from !== undefined && f.from === f.to) r.error(idx(key(lp, 'failover'), i), 'locality lb failover settings must specify different regions');
    });
  }
  checkDuration(r, key(p, 'warmupDurationSecs'), lb.warmupDurationSecs);
  if (lb.warmupDurationSecs !== undefined && lb.warmup !== undefined) r.error(key(p, 'warmup'), 'only one of warmupDurationSecs or warmup may be set');
  if (lb.warmup !== undefined) {
    checkDuration(r, key(key(p, 'warmup'), 'duration'), lb.warmup.duration);
    const min = lb.warmup.minimumPercent;
    if (min !== undefined && (min < 0 || min > 100)) r.error(key(key(p, 'warmup'), 'minimumPercent'), 'minimumPercent must be in range [0, 100]');
    if (lb.warmup.aggression !== undefined && lb.warmup.aggression < 1) r.error(key(key(p, 'warmup'), 'aggression'), 'aggression must be at least 1');
  }
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function nonNegative(r: Report, p: string, obj: Record<string, unknown> | undefined, fields: readonly string[]): void {
  for (const f of fields) {
    const v = obj?.[f];
    if (typeof v === 'number' && v < 0) r.error(key(p, f), `${f} must be non-negative`);
  }
}

export function checkConnectionPool(r: Report, p: string, cp: ConnectionPoolSettings | undefined): void {
  if (cp === undefined) return;
  if (cp.tcp === undefined && cp.http === undefined) r.error(p, 'connection pool must have at least one field');
  if (cp.tcp !== undefined) {
    const tp = key(p, 'tcp');
    nonNegative(r, tp, cp.tcp, ['maxConnections']);
    checkDuration(r, key(tp, 'connectTimeout'), cp.tcp.connectTimeout);
    checkDuration(r, key(tp, 'maxConnectionDuration'), cp.tcp.maxConnectionDuration);
    checkDuration(r, key(tp, 'idleTimeout'), cp.tcp.idleTimeout, { allowZero: true });
    checkDuration(r, key(key(tp, 'tcpKeepalive'), 'time'), cp.tcp.tcpKeepalive?.time);
    checkDuration(r, key(key(tp, 'tcpKeepalive'), 'interval'), cp.tcp.tcpKeepalive?.interval);
  }
  if (cp.http !== undefined) {
    const hp = key(p, 'http');
    nonNegative(r, hp, cp.http, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams']);
    checkDuration(r, key(hp, 'idleTimeout'), cp.http.idleTimeout); // Istio: at least 1ms
    if (cp.http.useClientProtocol === true && cp.http.h2UpgradePolicy === 'UPGRADE') {
      r.error(key(hp, 'h2UpgradePolicy'), 'h2UpgradePolicy UPGRADE cannot be used together with useClientProtocol');
    }
  }
}

function checkOutlierDetection(r: Report, p: string, od: OutlierDetection | undefined): void {
  if (od === undefined) return;
  nonNegative(r, p, od, ['consecutiveErrors']);
  checkDuration(r, key(p, 'interval'), od.interval);
  checkDuration(r, key(p, 'baseEjectionTime'), od.baseEjectionTime);
  for (const f of ['maxEjectionPercent', 'minHealthPercent'] as const) {
    const v = od[f];
    if (v !== undefined && (v < 0 || v > 100)) r.error(key(p, f), `outlier detection ${f} must be in range [0, 100]`);
  }
  if (od.consecutiveErrors !== undefined && od.consecutive5xxErrors !== undefined) r.error(key(p, 'consecutiveErrors'), 'consecutiveErrors is deprecated and cannot be set together with consecutive5xxErrors');
  if (od.consecutiveLocalOriginFailures !== undefined && od.splitExternalLocalOriginErrors !== true) {
    r.error(key(p, 'consecutiveLocalOriginFailures'), 'consecutiveLocalOriginFailures requires splitExternalLocalOriginErrors: true');
  }
}

/** Istio validateTLS for client (DestinationRule) TLS settings. */
export function checkClientTls(r: Report, p: string, tls: ClientTLSSettings | undefined): void {
  if (tls === undefined) return;
  const mode = tls.mode ?? 'DISABLE';
  const fileFields = (['clientCertificate', 'privateKey', 'caCertificates'] as const).filter((f) => tls[f] !== undefined);
  if (mode === 'ISTIO_MUTUAL' || mode === 'DISABLE') {
    for (const f of [...fileFields, ...(tls.credentialName !== undefined ? ['credentialName' as const] : [])]) {
      r.error(key(p, f), `${f} cannot be set with TLS mode ${mode}`);
    }
    return;
  }
  if (tls.credentialName !== undefined && fileFields.length > 0) {
    r.error(key(p, fileFields[0]!), 'cannot specify client certificates or CA certificate if credentialName is set');
  }
  if (mode === 'MUTUAL' && tls.credentialName === undefined) {
    if (tls.clientCertificate === undefined) r.error(key(p, 'clientCertificate'), 'client certificate required for mutual tls');
    if (tls.privateKey === undefined) r.error(key(p, 'privateKey'), 'private key required for mutual tls');
  }
  if (tls.insecureSkipVerify === true && (tls.caCertificates !== undefined || (tls.subjectAltNames ?? []).length > 0)) {
    r.error(key(p, 'insecureSkipVerify'), 'insecureSkipVerify cannot be set together with caCertificates or subjectAltNames');
  }
  if (tls.sni !== undefined && wildcardDomainError(tls.sni) !== undefined) r.error(key(p, 'sni'), `invalid sni ${JSON.stringify(tls.sni)}`);
}
