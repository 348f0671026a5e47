import { resourceKey } from '@aviary/mesh-api';
import { canonical, cmp, hostsOverlap, ns, type Findings, type Of, type Snapshot } from './model';

type Gateway = Of<'Gateway'>;
type VirtualService = Of<'VirtualService'>;

/** Resolves a VirtualService gateway reference to `namespace/name` (or `mesh`). */
export function gatewayRef(ref: string, vsNamespace: string): string {
  if (ref === 'mesh') return 'mesh';
  if (ref.includes('/')) return ref;
  const parts = ref.split('.');
  // FQDN form `<name>.<namespace>.svc.<suffix>`
  if (parts.length > 2 && parts[2] === 'svc') return `${parts[1]}/${parts[0]}`;
  return `${vsNamespace}/${ref}`;
}

function gatewayIndex(s: Snapshot): Map<string, Gateway> {
  return new Map(s.of('Gateway').map((g) => [`${ns(g)}/${g.metadata.name}`, g]));
}

/** IST0101 (gateway), IST0132: gateways a VirtualService names must exist and serve its hosts. */
export function analyzeGatewayRefs(s: Snapshot, out: Findings): void {
  const gateways = gatewayIndex(s);
  for (const vs of s.of('VirtualService')) {
    const key = resourceKey(vs);
    const refs: [string, string][] = (vs.spec.gateways ?? []).map((g, i) => [g, `spec.gateways[${i}]`]);
    (vs.spec.http ?? []).forEach((h, i) =>
      (h.match ?? []).forEach((m, j) => (m.gateways ?? []).forEach((g, k) => refs.push([g, `spec.http[${i}].match[${j}].gateways[${k}]`]))),
    );
    for (const [ref, path] of refs) {
      const id = gatewayRef(ref, ns(vs));
      if (id === 'mesh') continue;
      const gw = gateways.get(id);
      if (gw === undefined) out.add('ReferencedResourceNotFound', `Referenced gateway not found: ${JSON.stringify(ref)}`, [key], path);
      if (!path.startsWith('spec.gateways')) continue;
      // As Istio: a missing gateway serves no host, so it is reported here too.
      const hosts = vs.spec.hosts ?? [];
      if (gw === undefined || !hosts.some((host) => gatewayServes(gw, s.fqdn(host, ns(vs)), ns(vs)))) {
        out.add(
          'VirtualServiceHostNotFoundInGateway',
          `one or more host [${hosts.join(' ')}] defined in VirtualService ${ns(vs)}/${vs.metadata.name} not found in Gateway ${id}.`,
          gw === undefined ? [key] : [key, resourceKey(gw)],
          path,
        );
      }
    }
  }
}

/**
 * IST0101 (delegate): a delegating route names a VirtualService that routes it: one without hosts
 * (a delegate), exported to the root's namespace. Otherwise the route contributes nothing, in
 * Aviary as in Istio (which only logs it).
 */
export function analyzeDelegates(s: Snapshot, out: Findings): void {
  const byName = new Map(s.of('VirtualService').map((vs) => [`${ns(vs)}/${vs.metadata.name}`, vs]));
  for (const vs of s.of('VirtualService')) {
    (vs.spec.http ?? []).forEach((h, i) => {
      if (h.delegate === undefined) return;
      const ref = `${h.delegate.namespace || ns(vs)}/${h.delegate.name ?? ''}`;
      const target = byName.get(ref);
      const path = `spec.http[${i}].delegate`;
      if (target === undefined) {
        out.add('ReferencedResourceNotFound', `Referenced delegate virtual service not found: ${JSON.stringify(ref)}`, [resourceKey(vs)], path);
      } else if ((target.spec.hosts ?? []).length > 0) {
        out.add('ReferencedResourceNotFound', `Referenced delegate virtual service ${JSON.stringify(ref)} has hosts, so it is not a delegate`, [resourceKey(vs), resourceKey(target)], path);
      } else if (!exportedTo(target.spec.exportTo, ns(target), ns(vs))) {
        out.add('ReferencedResourceNotFound', `Referenced delegate virtual service ${JSON.stringify(ref)} is not exported to namespace ${JSON.stringify(ns(vs))}`, [resourceKey(vs), resourceKey(target)], path);
      }
    });
  }
}

function exportedTo(exportTo: readonly string[] | undefined, owner: string, namespace: string): boolean {
  if (exportTo === undefined || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || (e === '.' ? owner === namespace : e === namespace));
}

function gatewayServes(gw: Gateway, host: string, vsNamespace: string): boolean {
  return (gw.spec.servers ?? []).some((srv) =>
    srv.hosts.some((h) => {
      const [nsPart, name] = h.includes('/') ? (h.split('/') as [string, string]) : ['*', h];
      const nsOk = nsPart === '*' || (nsPart === '.' ? ns(gw) === vsNamespace : nsPart === vsNamespace);
      return nsOk && hostsOverlap(name, host);
    }),
  );
}

/** IST0101 (host+subset, host): every routed subset must be defined by a DestinationRule for the host. */
export function analyzeDestinations(s: Snapshot, out: Findings): void {
  const subsets = new Map<string, Set<string>>();
  for (const dr of s.of('DestinationRule')) {
    const host = s.fqdn(dr.spec.host, ns(dr));
    const set = subsets.get(host) ?? new Set<string>();
    for (const sub of dr.spec.subsets ?? []) set.add(sub.name);
    subsets.set(host, set);
  }
  for (const vs of s.of('VirtualService')) {
    for (const { host, subset, path } of destinations(vs)) {
      const fqdn = s.fqdn(host, ns(vs));
      const what = path.includes('.mirror') ? 'mirror' : 'host';
      if (s.hostExists(fqdn) === false) {
        out.add('ReferencedResourceNotFound', `Referenced ${what === 'mirror' ? 'mirror host' : 'host'} not found: ${JSON.stringify(host)}`, [resourceKey(vs)], `${path}.host`);
      }
      if (subset === undefined) continue;
      const defined = [...subsets.entries()].some(([h, set]) => set.has(subset) && (h === fqdn || (h.startsWith('*') && hostsOverlap(h, fqdn))));
      if (!defined) {
        out.add('ReferencedResourceNotFound', `Referenced ${what}+subset in destinationrule not found: ${JSON.stringify(`${host}+${subset}`)}`, [resourceKey(vs)], `${path}.subset`);
      }
    }
  }
}

function destinations(vs: VirtualService): { host: string; subset?: string; path: string }[] {
  const out: { host: string; subset?: string; path: string }[] = [];
  const push = (d: { host: string; subset?: string }, path: string) => out.push(d.subset === undefined ? { host: d.host, path } : { host: d.host, subset: d.subset, path });
  (vs.spec.http ?? []).forEach((h, i) => {
    (h.route ?? []).forEach((r, j) => push(r.destination, `spec.http[${i}].route[${j}].destination`));
    if (h.mirror !== undefined) push(h.mirror, `spec.http[${i}].mirror`);
    (h.mirrors ?? []).forEach((m, j) => push(m.destination, `spec.http[${i}].mirrors[${j}].destination`));
  });
  (vs.spec.tls ?? []).forEach((t, i) => (t.route ?? []).forEach((r, j) => push(r.destination, `spec.tls[${i}].route[${j}].destination`)));
  (vs.spec.tcp ?? []).forEach((t, i) => (t.route ?? []).forEach((r, j) => push(r.destination, `spec.tcp[${i}].route[${j}].destination`)));
  return out;
}

/**
 * IST0109: VirtualServices bound to the mesh gateway that claim one host for one audience. The
 * audience is the exportTo scope (`*` when absent); a VirtualService exported to some namespaces
 * also conflicts with one exported everywhere whose host overlaps. Gateway-bound VirtualServices
 * are not checked: their routes for one host are merged, in Aviary as in Istio. Each
 * VirtualService is reported once, on the first conflict in host order.
 */
export function analyzeConflictingHosts(s: Snapshot, out: Findings): void {
  const claims = new Map<string, VirtualService[]>();
  for (const vs of s.of('VirtualService')) {
    const gateways = vs.spec.gateways ?? [];
    if (gateways.length > 0 && !gateways.includes('mesh')) continue;
    const exportTo = vs.spec.exportTo ?? [];
    const scopes = exportTo.length === 0 || exportTo.includes('*') ? ['*'] : [...new Set(exportTo.map((e) => (e === '.' ? ns(vs) : e)))];
    for (const scope of scopes) {
      for (const host of new Set((vs.spec.hosts ?? []).map((h) => s.fqdn(h, ns(vs))))) {
        const k = `${scope}/${host}`;
        claims.set(k, [...(claims.get(k) ?? []), vs]);
      }
    }
  }
  const reported = new Set<VirtualService>();
  for (const [k, own] of [...claims.entries()].sort(([a], [b]) => cmp(a, b))) {
    const slash = k.indexOf('/');
    const scope = k.slice(0, slash);
    const host = k.slice(slash + 1);
    const everywhere = scope === '*' ? [] : [...claims.entries()].filter(([o]) => o.startsWith('*/') && hostsOverlap(host, o.slice(2))).flatMap(([, list]) => list);
    const list = [...own, ...everywhere];
    if (list.length < 2) continue;
    const names = list.map((v) => `${ns(v)}/${v.metadata.name}`).sort().join(',');
    for (const vs of list) {
      if (reported.has(vs)) continue;
      reported.add(vs);
      out.add(
        'ConflictingMeshGatewayVirtualServiceHosts',
        `The VirtualServices ${names} associated with mesh gateway define the same host ${k} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
        [resourceKey(vs), ...list.filter((o) => o !== vs).map(resourceKey)],
        'spec.hosts',
      );
    }
  }
}

/** Istio's names for rules and matches in IST0130 / IST0131: the quoted `name`, else `#index`. */
function ruleName(r: { name?: string }, i: number): string {
  return r.name !== undefined && r.name !== '' ? JSON.stringify(r.name) : `#${i}`;
}

/**
 * IST0130 / IST0131 over HTTP rules, as Istio's validation reports them: a rule without matches
 * after another one ("only the last rule can have no matches"), each match of a rule after one
 * ("route without matches defined before"), a match identical (names aside) to an earlier rule's
 * (IST0131), a rule whose every match is such a duplicate ("all matches used by prior rules"), and
 * a URI-prefix match that an earlier prefix match covers (IST0131, see `covers`).
 */
export function analyzeUnreachableRules(s: Snapshot, out: Findings): void {
  for (const vs of s.of('VirtualService')) {
    const key = resourceKey(vs);
    const http = vs.spec.http ?? [];
    const unreachable = (i: number, reason: string, path: string) =>
      out.add('VirtualServiceUnreachableRule', `VirtualService rule ${ruleName(http[i]!, i)} not used (${reason}).`, [key], path);
    const ineffective = (i: number, match: string, earlier: string, path: string) =>
      out.add('VirtualServiceIneffectiveMatch', `VirtualService rule ${ruleName(http[i]!, i)} match ${match} is not used (duplicate/overlapping match in rule ${earlier}).`, [key], path);
    const seen = new Map<string, number>();
    const prefixed: PrefixMatch[] = [];
    let emptyMatch: number | undefined;
    http.forEach((h, i) => {
      const matches = h.match ?? [];
      if (matches.length === 0) {
        if (emptyMatch !== undefined) unreachable(i, 'only the last rule can have no matches', `spec.http[${i}]`);
        emptyMatch = i;
        return;
      }
      let duplicates = 0;
      matches.forEach((m, j) => {
        const path = `spec.http[${i}].match[${j}]`;
        if (emptyMatch !== undefined) return unreachable(i, 'route without matches defined before', path);
        const { name: _name, ...rest } = m;
        const c = canonical(rest);
        const prev = seen.get(c);
        if (prev !== undefined) {
          duplicates++;
          return ineffective(i, ruleName(m, j), ruleName(http[prev]!, prev), path);
        }
        seen.set(c, i);
        const pm = prefixMatch(m, i, ruleName(h, i), ruleName(m, j), path);
        if (pm !== undefined) prefixed.push(pm);
      });
      if (duplicates === matches.length) unreachable(i, 'all matches used by prior rules', `spec.http[${i}]`);
    });
    prefixed.forEach((a, x) => {
      for (const b of prefixed.slice(x + 1)) {
        if (b.prefix === a.prefix || !covers(a, b)) continue;
        ineffective(b.rule, `${b.matchName} of prefix ${b.prefix}`, `${a.matchName} of prefix ${a.prefix} on ${a.ruleName}`, b.path);
      }
    });
  }
}

/** A URI-prefix match reduced to what Istio compares for overlaps (`exact:v` / `prefix:v` strings). */
interface PrefixMatch {
  rule: number;
  ruleName: string;
  matchName: string;
  path: string;
  prefix: string;
  port: number;
  method: string;
  authority: string;
  headers: Map<string, string>;
  queryParams: Map<string, string>;
  withoutHeaders: Map<string, string>;
}

type StringMatch = { exact?: string; prefix?: string } | undefined;

function exactOrPrefix(m: StringMatch): string {
  if (m?.exact !== undefined && m.exact !== '') return `exact:${m.exact}`;
  if (m?.prefix !== undefined && m.prefix !== '') return `prefix:${m.prefix}`;
  return '';
}

function prefixMatch(m: Record<string, unknown>, rule: number, ruleName: string, matchName: string, path: string): PrefixMatch | undefined {
  const prefix = (m['uri'] as StringMatch)?.prefix;
  if (prefix === undefined || prefix === '') return undefined;
  const map = (v: unknown) => new Map(Object.entries((v ?? {}) as Record<string, StringMatch>).map(([k, sm]) => [k, exactOrPrefix(sm)]));
  return {
    rule,
    ruleName,
    matchName,
    path,
    prefix,
    port: (m['port'] as number | undefined) ?? 0,
    // Istio takes a match without method as GET.
    method: exactOrPrefix(m['method'] as StringMatch) || 'exact:GET',
    authority: exactOrPrefix(m['authority'] as StringMatch),
    headers: map(m['headers']),
    queryParams: map(m['queryParams']),
    withoutHeaders: map(m['withoutHeaders']),
  };
}

/**
 * Istio's overlap rule: `a` (earlier) covers `b` when b's prefix starts with a's, the ports are
 * equal, and method, authority and every header, query parameter and withoutHeaders condition
 * (the same keys on both) are equal or a's starts with b's.
 */
function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  if (!b.prefix.startsWith(a.prefix) || a.port !== b.port) return false;
  const within = (x: string, y: string) => x === y || x.startsWith(y);
  const mapWithin = (x: Map<string, string>, y: Map<string, string>) => x.size === y.size && [...x].every(([k, v]) => y.has(k) && within(v, y.get(k)!));
  return within(a.method, b.method) && within(a.authority, b.authority) && mapWithin(a.headers, b.headers) && mapWithin(a.queryParams, b.queryParams) && mapWithin(a.withoutHeaders, b.withoutHeaders);
}
