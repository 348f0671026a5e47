import { parse as parseYaml } from 'yaml';
import { AviaryError } from '@aviary/errors';
import { Annotations, isYamlTrue } from './policy';
import { isObject } from './template';
import type { Pod } from './types';
import type { InjectionValues } from './values';

/** The per-pod settings: injector values overridden by the pod's annotations, all validated. */
export interface PodSettings {
  readonly native: boolean;
  readonly hold: boolean;
  readonly rewriteProbes: boolean;
  readonly proxyImage: string;
  readonly resources: {
    requests: { cpu: string; memory: string };
    limits: { cpu: string; memory: string };
  };
  readonly capture: {
    includeInboundPorts: string;
    excludeInboundPorts: string;
    includeOutboundIPRanges: string;
    excludeOutboundIPRanges: string;
    excludeOutboundPorts: string;
  };
}

const QUANTITY = /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$/;
const IMAGE = /^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]{0,511}$/;

function invalidAnnotation(name: string, value: string, expected: string): AviaryError {
  return new AviaryError('INVALID_ARGUMENT', 'ANNOTATION_INVALID', `annotation ${name}=${JSON.stringify(value.slice(0, 200))}: ${expected}`, { annotation: name });
}

/** Reads and validates the pod's injection annotations. Throws ANNOTATION_INVALID naming the annotation. */
export function podSettings(pod: Pod, values: InjectionValues): PodSettings {
  const a = pod.metadata?.annotations ?? {};
  const flag = (name: string, fallback: boolean): boolean => {
    const v = a[name];
    if (v === undefined) return fallback;
    if (isYamlTrue(v)) return true;
    if (['n', 'no', 'false', 'off'].includes(v.toLowerCase())) return false;
    throw invalidAnnotation(name, v, 'must be "true" or "false"');
  };
  const quantity = (name: string, fallback: string): string => {
    const v = a[name];
    if (v === undefined) return fallback;
    if (!QUANTITY.test(v)) throw invalidAnnotation(name, v, 'must be a Kubernetes quantity such as 100m or 128Mi');
    return v;
  };
  const ports = (name: string, fallback: string, allowStar: boolean): string => {
    const v = a[name];
    if (v === undefined) return fallback;
    const trimmed = v.replace(/\s+/g, '');
    if (allowStar && trimmed === '*') return trimmed;
    if (trimmed !== '' && !trimmed.split(',').every((p) => /^[0-9]{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535)) {
      throw invalidAnnotation(name, v, `must be a comma-separated list of ports 1-65535${allowStar ? ' or "*"' : ''}`);
    }
    return trimmed;
  };
  const ranges = (name: string, fallback: string): string => {
    const v = a[name];
    if (v === undefined) return fallback;
    const trimmed = v.replace(/\s+/g, '');
    if (trimmed === '*') return trimmed;
    if (trimmed !== '' && !trimmed.split(',').every(isCidr)) {
      throw invalidAnnotation(name, v, 'must be a comma-separated list of CIDRs (10.0.0.0/8, fd00::/8) or "*"');
    }
    return trimmed;
  };
  const image = a[Annotations.proxyImage] ?? values.proxyImage;
  if (!IMAGE.test(image)) throw invalidAnnotation(Annotations.proxyImage, image, 'must be a container image reference');

  const c = values.capture;
  const r = values.proxyResources;
  const userExcludedInbound = ports(Annotations.excludeInboundPorts, '', false);
  return {
    native: flag(Annotations.nativeSidecar, values.nativeSidecar),
    hold: holdFromProxyConfig(a[Annotations.proxyConfig]) ?? values.holdApplicationUntilProxyStarts,
    rewriteProbes: flag(Annotations.rewriteAppHTTPProbers, values.rewriteAppHTTPProbe),
    proxyImage: image,
    resources: {
      requests: { cpu: quantity(Annotations.proxyCPU, r.requests.cpu), memory: quantity(Annotations.proxyMemory, r.requests.memory) },
      limits: { cpu: quantity(Annotations.proxyCPULimit, r.limits.cpu), memory: quantity(Annotations.proxyMemoryLimit, r.limits.memory) },
    },
    capture: {
      includeInboundPorts: ports(Annotations.includeInboundPorts, c.includeInboundPorts, true),
      // The proxy's own inbound ports are never captured (Istio excludes 15090, 15021, 15020).
      excludeInboundPorts: joinPorts([values.ports.stats, values.ports.ready, values.ports.status, values.ports.admin].join(','), c.excludeInboundPorts, userExcludedInbound),
      includeOutboundIPRanges: ranges(Annotations.includeOutboundIPRanges, c.includeOutboundIPRanges),
      excludeOutboundIPRanges: ranges(Annotations.excludeOutboundIPRanges, c.excludeOutboundIPRanges),
      excludeOutboundPorts: ports(Annotations.excludeOutboundPorts, c.excludeOutboundPorts, false),
    },
  };
}

function joinPorts(...lists: string[]): string {
  const seen: string[] = [];
  for (const p of lists.flatMap((l) => l.split(','))) if (p !== '' && !seen.includes(p)) seen.push(p);
  return seen.join(',');
}

/** 4, 6 or 0 like node:net isIP, which a domain library may not import. */
function ipFamily(ip: string): 0 | 4 | 6 {
  if (/^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/.test(ip)) return 4;
  if (!ip.includes(':') || !/^[0-9a-fA-F:.]+$/.test(ip)) return 0;
  try {
    new URL(`http://[${ip}]/`);
    return 6;
  } catch {
    return 0;
  }
}

function isCidr(value: string): boolean {
  const slash = value.indexOf('/');
  const ip = slash === -1 ? value : value.slice(0, slash);
  const family = ipFamily(ip);
  if (family === 0) return false;
  if (slash === -1) return true;
  const bits = value.slice(slash + 1);
  return /^[0-9]{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/** `proxy.istio.io/config` is ProxyConfig in YAML; only holdApplicationUntilProxyStarts matters here. */
function holdFromProxyConfig(text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    throw invalidAnnotation(Annotations.proxyConfig, text, 'must be ProxyConfig in YAML or JSON');
  }
  if (doc === null || doc === undefined) return undefined;
  if (!isObject(doc)) throw invalidAnnotation(Annotations.proxyConfig, text, 'must be a ProxyConfig map');
  const hold = doc['holdApplicationUntilProxyStarts'];
  if (hold === undefined) return undefined;
  if (typeof hold !== 'boolean') throw invalidAnnotation(Annotations.proxyConfig, text, 'holdApplicationUntilProxyStarts must be true or false');
  return hold;
}
