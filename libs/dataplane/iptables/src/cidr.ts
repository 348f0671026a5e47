/**
 * CIDR parsing without node:net (a domain library may not import it). A CIDR is returned in the
 * form iptables-save prints it: the network address (host bits cleared) and an explicit prefix,
 * IPv6 compressed as RFC 5952 says, so built rules compare byte for byte with iptables-save.
 */
export interface Cidr {
  readonly family: 4 | 6;
  /** Canonical text, e.g. `10.0.0.0/8`, `fd00::/8`, `192.168.1.5/32`. */
  readonly text: string;
}

const IPV4_OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

function parseIpv4(ip: string): number[] | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => IPV4_OCTET.test(p))) return undefined;
  return parts.map(Number);
}

/** Eight 16-bit groups, or undefined. Accepts `::` compression and an embedded IPv4 tail. */
function parseIpv6(ip: string): number[] | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(ip) || ip.split('::').length > 2) return undefined;
  const toGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string;
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseIpv4(item);
        if (v4 === undefined) return undefined;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        out.push(parseInt(item, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const left = toGroups(head);
  if (left === undefined) return undefined;
  if (tail === undefined) return left.length === 8 ? left : undefined;
  const right = toGroups(tail);
  if (right === undefined || left.length + right.length > 7) return undefined;
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function formatIpv6(groups: readonly number[]): string {
  // RFC 5952: the longest run (≥ 2) of zero groups becomes `::`, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Clears the bits after `prefix` in a big-endian array of `width`-bit words. */
function mask(words: readonly number[], width: number, prefix: number): number[] {
  return words.map((w, i) => {
    const keep = Math.max(0, Math.min(width, prefix - i * width));
    return keep === 0 ? 0 : w & ~((1 << (width - keep)) - 1) & ((1 << width) - 1);
  });
}

/** Parses `10.0.0.0/8`, `10.1.2.3` (a /32), `fd00::/8`, `::1` (a /128); undefined when invalid. */
export function parseCidr(value: string): Cidr | undefined {
  const slash = value.indexOf('/');
  const ip = slash === -1 ? value : value.slice(0, slash);
  const bits = slash === -1 ? undefined : value.slice(slash + 1);
  if (bits !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(bits)) return undefined;
  const v4 = parseIpv4(ip);
  if (v4 !== undefined) {
    const prefix = bits === undefined ? 32 : Number(bits);
    if (prefix > 32) return undefined;
    return { family: 4, text: `${mask(v4, 8, prefix).join('.')}/${prefix}` };
  }
  const v6 = parseIpv6(ip);
  if (v6 !== undefined) {
    const prefix = bits === undefined ? 128 : Number(bits);
    if (prefix > 128) return undefined;
    return { family: 6, text: `${formatIpv6(mask(v6, 16, prefix))}/${prefix}` };
  }
  return undefined;
}
