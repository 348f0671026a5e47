import { type Gateway, type ServerTLSSettings } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkLabels, checkPort, isIP, isIstioLabel, wildcardDomainError } from './checks';

/** Protocols a port may declare (Istio protocol.Instance), case-insensitive. */
export const protocols = new Set(['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'MYSQL', 'REDIS', 'TCP', 'TLS', 'UDP']);
const tlsOrder = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];
/** The cipher suites Envoy's BoringSSL knows by these names (PSK suites aside), as Istio lists them. */
const cipherSuites = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-SHA', 'ECDHE-RSA-AES256-SHA', 'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-SHA', 'AES256-SHA', 'DES-CBC3-SHA',
]);

/** Istio IsValidCipherSuite: a known name, empty, ALL, or an expression starting with an operator (`-`, `+`, `!`, `[`). */
function isCipherSuite(cs: string): boolean {
  return cs === '' || cs === 'ALL' || !/^[\p{L}\p{N}]/u.test(cs) || cipherSuites.has(cs);
}

export function isProtocol(p: string): boolean {
  return protocols.has(p.toUpperCase());
}

/** Istio validateGateway. */
export function validateGateway(gw: Gateway, r: Report): void {
  const servers = gw.spec.servers ?? [];
  if (servers.length === 0) r.error('spec.servers', 'gateway must have at least one server');
  checkLabels(r, 'spec.selector', gw.spec.selector);
  const portNames = new Map<string, number>();
  const serverNames = new Set<string>();
  servers.forEach((s, i) => {
    const p = idx('spec.servers', i);
    if (s.hosts.length === 0) r.error(key(p, 'hosts'), 'server config must contain at least one host');
    s.hosts.forEach((h, j) => checkServerHost(r, idx(key(p, 'hosts'), j), h));
    const pp = key(p, 'port');
    const unixBind = s.bind?.startsWith('unix://') === true;
    if (!(unixBind && s.port.number === 0)) checkPort(r, key(pp, 'number'), s.port.number);
    const proto = s.port.protocol.toUpperCase();
    if (!isProtocol(proto)) r.error(key(pp, 'protocol'), `invalid protocol ${JSON.stringify(s.port.protocol)}, supported protocols are ${[...protocols].join(', ')}`);
    if (s.port.name === undefined || s.port.name === '') r.error(key(pp, 'name'), 'port name must be set');
    else {
      const prev = portNames.get(s.port.name);
      if (prev !== undefined && prev !== s.port.number) r.error(key(pp, 'name'), `port names in servers must be unique: duplicate name ${s.port.name}`);
      portNames.set(s.port.name, s.port.number);
    }
    checkPort(r, key(pp, 'targetPort'), s.port.targetPort, 'target port');
    if (s.name !== undefined) {
      if (serverNames.has(s.name)) r.error(key(p, 'name'), `server name ${JSON.stringify(s.name)} must be unique`);
      serverNames.add(s.name);
    }
    if (s.bind !== undefined && !unixBind && !isIP(s.bind)) r.error(key(p, 'bind'), `bind ${JSON.stringify(s.bind)} must be an IP address or a unix:// path`);
    const isTlsProto = proto === 'HTTPS' || proto === 'TLS';
    if (isTlsProto && s.tls === undefined) r.error(key(p, 'tls'), `server must have TLS settings for ${proto} ports`);
    else if (!isTlsProto && s.tls !== undefined && s.tls.httpsRedirect !== true) r.error(key(p, 'tls'), `server cannot have TLS settings for plain text ${proto} ports`);
    if (s.tls !== undefined && isTlsProto) checkServerTls(r, key(p, 'tls'), s.tls, proto);
  });
}

/** Gateway server hosts are `[namespace/]dnsName`; namespace may be `*`, `.` or a name. */
function checkServerHost(r: Report, p: string, host: string): void {
  const parts = host.split('/');
  if (parts.length > 2) {
    r.error(p, `host ${JSON.stringify(host)} must be of the form namespace/dnsName`);
    return;
  }
  if (parts.length === 2) {
    const ns = parts[0]!;
    if (ns !== '*' && ns !== '.' && !isIstioLabel(ns)) r.error(p, `invalid namespace value ${JSON.stringify(ns)} in host ${JSON.stringify(host)}`);
  }
  const name = parts[parts.length - 1]!;
  const problem = wildcardDomainError(name);
  if (problem !== undefined && !isIP(name)) r.error(p, problem);
}

/** Istio validateServerTLS / validateTLSOptions. */
export function checkServerTls(r: Report, p: string, tls: ServerTLSSettings, proto: string): void {
  const mode = tls.mode ?? 'SIMPLE';
  // Istio accepts it on any TLS port; Aviary's gateway routes AUTO_PASSTHROUGH by SNI on TLS ports only.
  if (mode === 'AUTO_PASSTHROUGH' && proto !== 'TLS') r.error(key(p, 'mode'), `AUTO_PASSTHROUGH on a ${proto} port is not supported by Aviary yet: use protocol TLS`);
  if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    const hasCredential = tls.credentialName !== undefined || (tls.credentialNames ?? []).length > 0;
    if (hasCredential && (tls.serverCertificate !== undefined || tls.privateKey !== undefined || tls.caCertificates !== undefined)) {
      r.error(key(p, 'credentialName'), 'cannot specify certificate files when credentialName is set');
    }
    if (!hasCredential) {
      if (tls.serverCertificate === undefined) r.error(key(p, 'serverCertificate'), `${mode} TLS requires a server certificate`);
      if (tls.privateKey === undefined) r.error(key(p, 'privateKey'), `${mode} TLS requires a private key`);
      if (mode !== 'SIMPLE' && tls.caCertificates === undefined) r.error(key(p, 'caCertificates'), `${mode} TLS requires a client CA bundle`);
    }
  } else if (mode === 'ISTIO_MUTUAL' || mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    for (const f of ['serverCertificate', 'privateKey', 'caCertificates', 'credentialName'] as const) {
      if (tls[f] !== undefined) r.error(key(p, f), `${f} cannot be set with TLS mode ${mode}`);
    }
  }
  if (tls.minProtocolVersion !== undefined && tls.maxProtocolVersion !== undefined) {
    if (tlsOrder.indexOf(tls.minProtocolVersion) > tlsOrder.indexOf(tls.maxProtocolVersion) && tls.maxProtocolVersion !== 'TLS_AUTO') {
      r.error(key(p, 'maxProtocolVersion'), 'maxProtocolVersion must be greater than or equal to minProtocolVersion');
    }
  }
  // Istio drops unknown suites with a warning before configuring Envoy; Aviary passes the list
  // as written, and Envoy refuses a listener with an unknown suite, so it is an error here.
  const seenCiphers = new Set<string>();
  (tls.cipherSuites ?? []).forEach((cs, i) => {
    const cp = idx(key(p, 'cipherSuites'), i);
    if (!isCipherSuite(cs)) r.error(cp, `unknown cipher suite ${JSON.stringify(cs)}`);
    else if (seenCiphers.has(cs)) r.warn(cp, `duplicate cipher suite ${JSON.stringify(cs)}`);
    seenCiphers.add(cs);
  });
  (tls.verifyCertificateSpki ?? []).forEach((v, i) => {
    if (!/^[A-Za-z0-9+/]{43}=$/.test(v)) r.error(idx(key(p, 'verifyCertificateSpki'), i), 'must be a base64-encoded SHA-256 hash');
  });
  (tls.verifyCertificateHash ?? []).forEach((v, i) => {
    if (!/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/.test(v)) r.error(idx(key(p, 'verifyCertificateHash'), i), 'must be a hex-encoded SHA-256 hash');
  });
}
