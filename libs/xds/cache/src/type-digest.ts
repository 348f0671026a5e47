import { hash } from 'node:crypto';
import type { EncodedResource } from './snapshot';

/** Each resource's 64-bit digest of `name \0 version`, as two 32-bit lanes; computed once per resource. */
const entryDigests = new WeakMap<EncodedResource, readonly [number, number]>();

function entryDigest(resource: EncodedResource): readonly [number, number] {
  let digest = entryDigests.get(resource);
  if (!digest) {
    // One-shot: no Hash object per resource (the same SHA-256 as `createHash`).
    const bytes = hash('sha256', `${resource.name}\0${resource.version}`, 'buffer');
    digest = [bytes.readUInt32BE(0), bytes.readUInt32BE(4)];
    entryDigests.set(resource, digest);
  }
  return digest;
}

/**
 * The version of one type's resources: the sum, lane by lane modulo 2^32, of a SHA-256-derived
 * 64-bit digest of each resource's name and version. A sum does not depend on order (no sort),
 * and replacing resources updates it by subtracting the old entries and adding the new ones, so
 * a snapshot patched with a few ClusterLoadAssignments costs the same whatever its size, and
 * equals the digest of a fresh build of the same resources. Two different sets share a version
 * with probability about 2^-64 (the names are unique within a type, so this is a set hash).
 * Resource content is produced by the control plane itself, not chosen by an adversary.
 */
export class TypeDigest {
  private constructor(
    private readonly hi: number,
    private readonly lo: number,
    readonly size: number,
  ) {}

  static of(resources: Iterable<EncodedResource>): TypeDigest {
    let hi = 0;
    let lo = 0;
    let size = 0;
    for (const r of resources) {
      const [h, l] = entryDigest(r);
      hi = (hi + h) >>> 0;
      lo = (lo + l) >>> 0;
      size++;
    }
    return new TypeDigest(hi, lo, size);
  }

  /** This digest with `removed` taken out and `added` put in (same count: a replace by name). */
  update(removed: readonly EncodedResource[], added: readonly EncodedResource[]): TypeDigest {
    let hi = this.hi;
    let lo = this.lo;
    for (const r of removed) {
      const [h, l] = entryDigest(r);
      hi = (hi - h) >>> 0;
      lo = (lo - l) >>> 0;
    }
    for (const r of added) {
      const [h, l] = entryDigest(r);
      hi = (hi + h) >>> 0;
      lo = (lo + l) >>> 0;
    }
    return new TypeDigest(hi, lo, this.size - removed.length + added.length);
  }

  /** The SotW `version_info`: 16 hex digits. */
  get hex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}
