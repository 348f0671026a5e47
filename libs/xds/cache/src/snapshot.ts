import { createHash } from 'node:crypto';
import { AviaryError } from '@aviary/errors';
import {
  TypeUrl,
  canonicalResource,
  encodeMessageOf,
  resourceTypeUrls,
  typeNameOf,
  type CanonicalMessage,
  type ResourceTypeUrl,
} from '@aviary/xds-protos';
import { consistencyProblems } from './consistency';

/** One resource, verified and encoded once; shared by every snapshot and proxy that holds it. */
export interface EncodedResource {
  readonly typeUrl: ResourceTypeUrl;
  readonly name: string;
  /** Per-resource version: the one given with `versioned()`, else a hash of the bytes. */
  readonly version: string;
  /** Canonical form (see @aviary/xds-protos): what consistency checks and config dumps read. */
  readonly resource: CanonicalMessage;
  /** The encoded message, i.e. the `value` of the Any sent to proxies. */
  readonly bytes: Uint8Array;
}

/**
 * A resource with a version chosen by the translator (e.g. the model revision it came from).
 * The encoder then reuses the bytes of an earlier resource with the same type, name and
 * version without looking at the object again.
 */
export class VersionedResource {
  constructor(
    readonly resource: object,
    readonly version: string,
  ) {}
}

export function versioned(resource: object, version: string): VersionedResource {
  return new VersionedResource(resource, version);
}

export type ResourceEntry = object | VersionedResource;

/** Resources by type URL, as a translator produces them (canonical snake_case objects). */
export type SnapshotInput = Partial<Record<ResourceTypeUrl, readonly ResourceEntry[]>>;

function hash(parts: readonly (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  if (parts.every((p) => typeof p === 'string')) {
    // One update of the joined text hashes the same bytes as one update per part, with far
    // fewer calls into native code (a type's version hashes hundreds of names).
    if (parts.length > 0) h.update(`${parts.join('\0')}\0`);
  } else {
    for (const p of parts) {
      h.update(p);
      h.update('\0');
    }
  }
  return h.digest('hex').slice(0, 16);
}

/** The field that names a resource of each type. */
export function resourceNameOf(typeUrl: ResourceTypeUrl, resource: object): string {
  const key = typeUrl === TypeUrl.ClusterLoadAssignment ? 'cluster_name' : 'name';
  const name = (resource as Record<string, unknown>)[key];
  if (typeof name !== 'string' || name === '') {
    throw new AviaryError('INVALID_ARGUMENT', 'XDS_RESOURCE_INVALID', `${typeNameOf(typeUrl)} needs a non-empty ${key}`, { typeUrl });
  }
  return name;
}

/** One type's resources of a snapshot, by name, with the type's hashed version. */
interface EncodedList {
  readonly typeUrl: ResourceTypeUrl;
  readonly map: ReadonlyMap<string, EncodedResource>;
  readonly version: string;
}

/**
 * Verifies and encodes resources once. Reuse is by object identity (a translator that keeps
 * returning the same frozen object pays nothing), by (type, name, version) for
 * `versioned()` entries, and by content hash otherwise (equal bytes share one entry).
 * Only the newest version of each name is remembered; older ones live as long as a
 * snapshot holds them.
 */
export class ResourceEncoder {
  private readonly byObject = new WeakMap<object, EncodedResource>();
  private readonly byList = new WeakMap<readonly ResourceEntry[], EncodedList>();
  private readonly byName = new Map<string, EncodedResource>();
  /** JSON of the object behind each `byName` entry: equal JSON means equal input, so equal bytes. */
  private readonly jsonByName = new Map<string, string>();
  encoded = 0;
  reused = 0;

  encode(typeUrl: ResourceTypeUrl, entry: ResourceEntry): EncodedResource {
    const resource = entry instanceof VersionedResource ? entry.resource : entry;
    const known = this.byObject.get(resource);
    if (known && known.typeUrl === typeUrl && (!(entry instanceof VersionedResource) || known.version === entry.version)) {
      this.reused++;
      return known;
    }
    const name = resourceNameOf(typeUrl, resource);
    const key = `${typeUrl}\0${name}`;
    const previous = this.byName.get(key);
    if (entry instanceof VersionedResource && previous?.version === entry.version) {
      this.reused++;
      this.byObject.set(resource, previous);
      return previous;
    }
    // Translators build fresh objects for every proxy; most are equal to one encoded before.
    // Comparing JSON is far cheaper than verifying, encoding and hashing to find that out.
    const json = entry instanceof VersionedResource ? undefined : jsonOf(resource);
    if (json !== undefined && previous && this.jsonByName.get(key) === json) {
      this.reused++;
      this.byObject.set(resource, previous);
      return previous;
    }
    const canonical = canonicalResource(typeUrl, resource);
    const bytes = encodeMessageOf(typeNameOf(typeUrl), canonical);
    const version = entry instanceof VersionedResource ? entry.version : hash([bytes]);
    let result: EncodedResource;
    if (previous && previous.version === version) {
      this.reused++;
      result = previous;
    } else {
      this.encoded++;
      result = Object.freeze({ typeUrl, name, version, resource: canonical, bytes });
      this.byName.set(key, result);
    }
    if (json === undefined) this.jsonByName.delete(key);
    else this.jsonByName.set(key, json);
    this.byObject.set(resource, result);
    return result;
  }

  /**
   * Encodes a type's entries into a map by name plus the type's hashed version. A list given
   * again (the same array, as translators that share parts between proxies return) reuses the
   * earlier map: like the objects in it, a list handed to the encoder must not change.
   */
  encodeList(typeUrl: ResourceTypeUrl, entries: readonly ResourceEntry[]): EncodedList {
    const known = this.byList.get(entries);
    if (known && known.typeUrl === typeUrl) return known;
    const map = new Map<string, EncodedResource>();
    for (const entry of entries) {
      const encoded = this.encode(typeUrl, entry);
      if (map.has(encoded.name)) {
        throw new AviaryError('INVALID_ARGUMENT', 'XDS_SNAPSHOT_DUPLICATE', `two ${typeNameOf(typeUrl)} resources are named ${encoded.name}`, { typeUrl, name: encoded.name });
      }
      map.set(encoded.name, encoded);
    }
    const list: EncodedList = { typeUrl, map, version: typeVersion(map) };
    if (entries.length > 0) this.byList.set(entries, list);
    return list;
  }

  /** Forgets names no longer in use (call after a full rebuild with the live set). */
  retain(live: Iterable<EncodedResource>): void {
    const keep = new Set<string>();
    for (const r of live) keep.add(`${r.typeUrl}\0${r.name}`);
    for (const key of this.byName.keys()) {
      if (keep.has(key)) continue;
      this.byName.delete(key);
      this.jsonByName.delete(key);
    }
  }
}

/**
 * JSON of a translator's output (plain objects, arrays, strings, numbers, booleans), or
 * undefined when JSON cannot stand for its content: a `null` in the text may be NaN or
 * Infinity, and BigInt throws; the full path then decides.
 */
function jsonOf(resource: object): string | undefined {
  try {
    const json = JSON.stringify(resource);
    return json.includes('null') ? undefined : json;
  } catch {
    return undefined;
  }
}

const sharedEncoder = new ResourceEncoder();

/** The process-wide encoder used when none is given. */
export function defaultEncoder(): ResourceEncoder {
  return sharedEncoder;
}

export interface ConsistencyResult {
  readonly ok: boolean;
  /** One line per dangling reference, e.g. `listener "l" references missing route configuration "r"`. */
  readonly problems: readonly string[];
}

/**
 * An immutable set of resources per type with a version per type. A snapshot is a value:
 * build a new one for every change; `consistent()` must hold before it is published.
 */
export class Snapshot {
  private constructor(
    private readonly byType: ReadonlyMap<ResourceTypeUrl, ReadonlyMap<string, EncodedResource>>,
    private readonly versions: ReadonlyMap<ResourceTypeUrl, string>,
  ) {}

  static build(input: SnapshotInput, options: { encoder?: ResourceEncoder; versions?: Partial<Record<ResourceTypeUrl, string>> } = {}): Snapshot {
    const encoder = options.encoder ?? sharedEncoder;
    const byType = new Map<ResourceTypeUrl, ReadonlyMap<string, EncodedResource>>();
    const versions = new Map<ResourceTypeUrl, string>();
    for (const typeUrl of resourceTypeUrls) {
      const { map, version } = encoder.encodeList(typeUrl, input[typeUrl] ?? []);
      byType.set(typeUrl, map);
      versions.set(typeUrl, options.versions?.[typeUrl] ?? version);
    }
    return new Snapshot(byType, versions);
  }

  /**
   * This snapshot with some resources replaced by name (every name must already be present, so
   * references stay as they were). A type whose resources all keep their versions keeps its
   * version and map; a changed type gets the hashed version `build` would give it, so the result
   * equals a fresh `build` of the same resources.
   */
  replace(input: SnapshotInput, options: { encoder?: ResourceEncoder } = {}): Snapshot {
    const encoder = options.encoder ?? sharedEncoder;
    const byType = new Map(this.byType);
    const versions = new Map(this.versions);
    for (const typeUrl of resourceTypeUrls) {
      const entries = input[typeUrl] ?? [];
      if (entries.length === 0) continue;
      const current = this.resources(typeUrl);
      let map: Map<string, EncodedResource> | undefined;
      for (const entry of entries) {
        const encoded = encoder.encode(typeUrl, entry);
        const old = current.get(encoded.name);
        if (!old) {
          throw new AviaryError('INVALID_ARGUMENT', 'XDS_SNAPSHOT_UNKNOWN', `cannot replace ${typeNameOf(typeUrl)} ${encoded.name}: the snapshot has none`, { typeUrl, name: encoded.name });
        }
        if (old.version === encoded.version) continue;
        map ??= new Map(current);
        map.set(encoded.name, encoded);
      }
      if (!map) continue;
      byType.set(typeUrl, map);
      versions.set(typeUrl, typeVersion(map));
    }
    return new Snapshot(byType, versions);
  }

  static empty(): Snapshot {
    return emptySnapshot;
  }

  /** SotW `version_info` of a type: given at build time, else a hash of names and resource versions. */
  version(typeUrl: ResourceTypeUrl): string {
    return this.versions.get(typeUrl) ?? '';
  }

  resources(typeUrl: ResourceTypeUrl): ReadonlyMap<string, EncodedResource> {
    return this.byType.get(typeUrl) ?? emptyMap;
  }

  get(typeUrl: ResourceTypeUrl, name: string): EncodedResource | undefined {
    return this.byType.get(typeUrl)?.get(name);
  }

  /** Every RDS name a listener references exists; every EDS name a cluster references exists. */
  consistent(): ConsistencyResult {
    const problems = consistencyProblems(
      [...this.resources(TypeUrl.Listener).values()].map((r) => r.resource),
      [...this.resources(TypeUrl.Cluster).values()].map((r) => r.resource),
      new Set(this.resources(TypeUrl.RouteConfiguration).keys()),
      new Set(this.resources(TypeUrl.ClusterLoadAssignment).keys()),
    );
    return { ok: problems.length === 0, problems };
  }

  /** Types whose version differs from `previous` (all non-empty types when there is none). */
  changedTypes(previous: Snapshot | undefined): ResourceTypeUrl[] {
    return resourceTypeUrls.filter((t) => (previous ? previous.version(t) !== this.version(t) : this.resources(t).size > 0));
  }

  /** Every resource, for `ResourceEncoder.retain`. */
  *all(): IterableIterator<EncodedResource> {
    for (const map of this.byType.values()) yield* map.values();
  }
}

const emptyMap: ReadonlyMap<string, EncodedResource> = new Map();

/** Version of a type: a hash of its names (sorted) and resource versions. */
function typeVersion(map: ReadonlyMap<string, EncodedResource>): string {
  const names = [...map.keys()].sort();
  return hash(names.flatMap((n) => [n, map.get(n)!.version]));
}
const emptySnapshot = Snapshot.build({}, { encoder: new ResourceEncoder() });

/** Throws `XDS_SNAPSHOT_INCONSISTENT` listing the dangling references. */
export function assertConsistent(snapshot: Snapshot): void {
  const result = snapshot.consistent();
  if (!result.ok) {
    throw new AviaryError('FAILED_PRECONDITION', 'XDS_SNAPSHOT_INCONSISTENT', `snapshot is inconsistent: ${result.problems.join('; ')}`, { problems: result.problems });
  }
}
