import { createHash, hash } from 'node:crypto';
import { AviaryError } from '@aviary/errors';
import {
  TypeUrl,
  canonicalResource,
  decodeResource,
  LookupPolicy,
  encodeCanonicalAfter,
  resourceTypeUrls,
  typeNameOf,
  varint32Size,
  writeVarint32,
  type CanonicalMessage,
  type ResourceTypeUrl,
} from '@aviary/xds-protos';
import { consistencyProblems } from './consistency';
import { TypeDigest } from './type-digest';

/** One resource, verified and encoded once; shared by every snapshot and proxy that holds it. */
export interface EncodedResource {
  readonly typeUrl: ResourceTypeUrl;
  readonly name: string;
  /** Per-resource version: the one given with `versioned()`, else a hash of the bytes. */
  readonly version: string;
  /**
   * Canonical form (see @aviary/xds-protos): what consistency checks and config dumps read.
   * Kept for listeners and clusters, which every snapshot's consistency check and every CDS push
   * read; decoded from `bytes` on each read for the other types (see `encodedResource`).
   */
  readonly resource: CanonicalMessage;
  /** The encoded message, i.e. the `value` of the Any sent to proxies. */
  readonly bytes: Uint8Array;
  /**
   * The resource as a response sends it: field 2 (key and length) holding the Any
   * `{ type_url, value: bytes }`. That is one element of a DiscoveryResponse's `resources` and
   * the `resource` field of a delta Resource, so every response copies it whole; `bytes` is a
   * view of its tail. Resources made by `ResourceEncoder` have it; one without it is framed
   * when sent.
   */
  readonly entry?: Uint8Array;
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

/** A resource's version when the translator gives none: a hash of its encoded bytes. */
function hashBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).update('\0').digest('hex').slice(0, 16);
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
  readonly digest: TypeDigest;
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
  /** Per `byName` key: the JSON digest of the object behind the entry, and whether digests pay there. */
  private readonly digests = new Map<string, NameDigest>();
  encoded = 0;
  reused = 0;
  /** JSON digests computed (`jsonDigestOf`), for tests and profiles. */
  digested = 0;

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
    // A new model's shared parts are fresh objects, mostly equal to ones encoded before under
    // the same name: comparing JSON is far cheaper than verifying, encoding and hashing to find
    // that out. Where it keeps missing (a name each proxy has its own content under, such as a
    // sidecar's virtualInbound), it is mostly skipped (`NameDigest.want`). A name seen for the
    // first time (every name of a cold start) has nothing to compare with: no digest then.
    let digest = this.digests.get(key);
    if (!digest) {
      digest = new NameDigest();
      this.digests.set(key, digest);
    }
    const json = entry instanceof VersionedResource || !previous || !digest.want() ? undefined : this.digestOf(resource);
    if (json !== undefined && digest.matches(json, (o) => this.digestOf(o))) {
      digest.hit();
      this.reused++;
      this.byObject.set(resource, previous!);
      return previous!;
    }
    if (json !== undefined) digest.missed();
    const canonical = canonicalResource(typeUrl, resource);
    const encoded = encodeEntry(typeUrl, canonical);
    const version = entry instanceof VersionedResource ? entry.version : hashBytes(encoded.bytes);
    let result: EncodedResource;
    if (previous && previous.version === version) {
      this.reused++;
      result = previous;
    } else {
      this.encoded++;
      result = encodedResource(typeUrl, name, version, canonical, encoded);
      this.byName.set(key, result);
    }
    digest.remember(resource, json);
    this.byObject.set(resource, result);
    return result;
  }

  private digestOf(resource: object): string | undefined {
    this.digested++;
    return jsonDigestOf(resource);
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
    const list: EncodedList = { typeUrl, map, digest: TypeDigest.of(map.values()) };
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
      this.digests.delete(key);
    }
  }
}

/**
 * Whether JSON digests pay under one name (see `LookupPolicy`): an encode without a digest
 * verifies and encodes, and equal bytes still reuse the entry. The object behind the entry is
 * digested only when an encode is compared with it, so an undigested encode keeps that object
 * (one per name) until then rather than 128 bits of its digest.
 */
class NameDigest extends LookupPolicy {
  /** Digest of the JSON of the object behind the name's entry, once taken. */
  private json: string | undefined;
  /** That object while its digest is not taken: taken when another object first comes under the name. */
  private source: object | undefined;

  /** The object behind the name's entry now, with its digest when one was taken. */
  remember(resource: object, json: string | undefined): void {
    this.json = json;
    this.source = json === undefined ? resource : undefined;
  }

  /** Whether `json` is the digest of the object behind the entry (digested now if it was not). */
  matches(json: string, digestOf: (resource: object) => string | undefined): boolean {
    if (this.source !== undefined) {
      this.json = digestOf(this.source);
      this.source = undefined;
    }
    return this.json === json;
  }
}

/** Types whose canonical form an encoded resource keeps: the ones read without a request for them. */
const canonicalKept: ReadonlySet<ResourceTypeUrl> = new Set([TypeUrl.Listener, TypeUrl.Cluster]);

/**
 * An encoded resource. Only listeners and clusters keep their canonical form: nothing reads the
 * other types' but a config dump, and it is the largest part of what the control plane holds
 * per resource (an assignment's endpoints and their metadata are dozens of objects each),
 * so the other types decode it from the bytes when read. The bytes round-trip to the same
 * canonical form (the encoder's contract, `assertRoundTrip`).
 */
function encodedResource(typeUrl: ResourceTypeUrl, name: string, version: string, canonical: CanonicalMessage, encoded: EncodedEntry): EncodedResource {
  const { entry, bytes } = encoded;
  if (canonicalKept.has(typeUrl)) return Object.freeze({ typeUrl, name, version, resource: canonical, bytes, entry });
  return Object.freeze({
    typeUrl,
    name,
    version,
    get resource(): CanonicalMessage {
      return decodeResource(typeUrl, bytes);
    },
    bytes,
    entry,
  });
}

interface EncodedEntry {
  readonly entry: Buffer;
  readonly bytes: Buffer;
}

/**
 * A resource encoded as its entry (`EncodedResource.entry`): field 2 holding the Any
 * `{ type_url = 1; value = 2 }`, the message written in place after the keys and lengths.
 */
function encodeEntry(typeUrl: ResourceTypeUrl, canonical: CanonicalMessage): EncodedEntry {
  const urlLength = Buffer.byteLength(typeUrl);
  // The header's length depends on the message's, which the writer counts first.
  let size = 0;
  let anyLength = 0;
  const entry = encodeCanonicalAfter(typeNameOf(typeUrl), canonical, (counted) => {
    size = counted;
    anyLength = 1 + varint32Size(urlLength) + urlLength + 1 + varint32Size(counted) + counted;
    return 1 + varint32Size(anyLength) + anyLength - counted;
  });
  entry[0] = 0x12;
  let pos = writeVarint32(entry, 1, anyLength);
  entry[pos++] = 0x0a;
  pos = writeVarint32(entry, pos, urlLength);
  pos += entry.write(typeUrl, pos, urlLength, 'utf8');
  entry[pos++] = 0x12;
  pos = writeVarint32(entry, pos, size);
  if (pos !== entry.length - size) throw new AviaryError('INTERNAL', 'XDS_ENCODE_FAILED', `entry header of ${pos} bytes, want ${entry.length - size}`);
  return { entry, bytes: entry.subarray(pos) };
}

/**
 * A digest of the JSON of a translator's output (plain objects, arrays, strings, numbers,
 * booleans), or undefined when JSON cannot stand for its content: a `null` in the text may be
 * NaN or Infinity, and BigInt throws; the full path then decides. The encoder keeps one per
 * resource name, so it keeps 128 bits of SHA-256 rather than the text (kilobytes for an
 * assignment); hashing costs a fraction of producing the JSON.
 */
function jsonDigestOf(resource: object): string | undefined {
  try {
    const json = JSON.stringify(resource);
    return json.includes('null') ? undefined : hash('sha256', json, 'hex').slice(0, 32);
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
  /** `consistent()`'s answer, computed once (a snapshot never changes). */
  private consistency: ConsistencyResult | undefined;

  private constructor(
    private readonly byType: ReadonlyMap<ResourceTypeUrl, ReadonlyMap<string, EncodedResource>>,
    /** Per type: the digest its version is made of, or the version given at build time. */
    private readonly versions: ReadonlyMap<ResourceTypeUrl, TypeDigest | string>,
  ) {}

  static build(input: SnapshotInput, options: { encoder?: ResourceEncoder; versions?: Partial<Record<ResourceTypeUrl, string>> } = {}): Snapshot {
    const encoder = options.encoder ?? sharedEncoder;
    const byType = new Map<ResourceTypeUrl, ReadonlyMap<string, EncodedResource>>();
    const versions = new Map<ResourceTypeUrl, TypeDigest | string>();
    for (const typeUrl of resourceTypeUrls) {
      const { map, digest } = encoder.encodeList(typeUrl, input[typeUrl] ?? []);
      byType.set(typeUrl, map);
      versions.set(typeUrl, options.versions?.[typeUrl] ?? digest);
    }
    return new Snapshot(byType, versions);
  }

  /**
   * This snapshot with some resources replaced by name (every name must already be present, so
   * references stay as they were). A type whose resources all keep their versions keeps its
   * version and map; a changed type gets the version `build` would give it, so the result
   * equals a fresh `build` of the same resources. The cost is in the replaced resources, not in
   * the snapshot's size: a type's digest is updated by the entries that changed, and when this
   * snapshot's consistency is known only the replaced listeners and clusters are checked (the
   * name sets they reference into are unchanged). Snapshots that replace the same entries in
   * the same type map get one new map between them (see `replacedMap`).
   */
  replace(input: SnapshotInput, options: { encoder?: ResourceEncoder } = {}): Snapshot {
    const encoder = options.encoder ?? sharedEncoder;
    const byType = new Map(this.byType);
    const versions = new Map(this.versions);
    const replaced = new Map<ResourceTypeUrl, EncodedResource[]>();
    for (const typeUrl of resourceTypeUrls) {
      const entries = input[typeUrl] ?? [];
      if (entries.length === 0) continue;
      const current = this.resources(typeUrl);
      const { removed, added } = replacedEntries(typeUrl, current, entries, encoder);
      if (added.length === 0) continue;
      const map = replacedMap(current, added);
      byType.set(typeUrl, map);
      replaced.set(typeUrl, added);
      const version = this.versions.get(typeUrl);
      // A version given at build time names that exact content; once content changes it is replaced by the digest.
      versions.set(typeUrl, version instanceof TypeDigest ? version.update(removed, added) : TypeDigest.of(map.values()));
    }
    const next = new Snapshot(byType, versions);
    if (this.consistency?.ok) next.consistency = next.checkReplaced(replaced);
    else if (replaced.size === 0) next.consistency = this.consistency;
    return next;
  }

  static empty(): Snapshot {
    return emptySnapshot;
  }

  /** SotW `version_info` of a type: given at build time, else a digest of names and resource versions. */
  version(typeUrl: ResourceTypeUrl): string {
    const version = this.versions.get(typeUrl);
    return version === undefined ? '' : typeof version === 'string' ? version : version.hex;
  }

  resources(typeUrl: ResourceTypeUrl): ReadonlyMap<string, EncodedResource> {
    return this.byType.get(typeUrl) ?? emptyMap;
  }

  get(typeUrl: ResourceTypeUrl, name: string): EncodedResource | undefined {
    return this.byType.get(typeUrl)?.get(name);
  }

  /** Every RDS name a listener references exists; every EDS name a cluster references exists. */
  consistent(): ConsistencyResult {
    this.consistency ??= this.check([...this.resources(TypeUrl.Listener).values()], [...this.resources(TypeUrl.Cluster).values()]);
    return this.consistency;
  }

  /** The consistency of a replace of a consistent snapshot: only what was replaced can dangle. */
  private checkReplaced(replaced: ReadonlyMap<ResourceTypeUrl, readonly EncodedResource[]>): ConsistencyResult {
    const listeners = replaced.get(TypeUrl.Listener) ?? [];
    const clusters = replaced.get(TypeUrl.Cluster) ?? [];
    return listeners.length === 0 && clusters.length === 0 ? consistentResult : this.check(listeners, clusters);
  }

  private check(listeners: readonly EncodedResource[], clusters: readonly EncodedResource[]): ConsistencyResult {
    const problems = consistencyProblems(
      listeners.map((r) => r.resource),
      clusters.map((r) => r.resource),
      this.resources(TypeUrl.RouteConfiguration),
      this.resources(TypeUrl.ClusterLoadAssignment),
    );
    return problems.length === 0 ? consistentResult : { ok: false, problems };
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

/**
 * The entries of `current` that `entries` replace with another version, and their replacements.
 * Every name must be in `current`; the same name twice in `entries` replaces once, last wins.
 */
function replacedEntries(
  typeUrl: ResourceTypeUrl,
  current: ReadonlyMap<string, EncodedResource>,
  entries: readonly ResourceEntry[],
  encoder: ResourceEncoder,
): { removed: EncodedResource[]; added: EncodedResource[] } {
  const byName = new Map<string, EncodedResource>();
  for (const entry of entries) {
    const encoded = encoder.encode(typeUrl, entry);
    if (!current.has(encoded.name)) {
      throw new AviaryError('INVALID_ARGUMENT', 'XDS_SNAPSHOT_UNKNOWN', `cannot replace ${typeNameOf(typeUrl)} ${encoded.name}: the snapshot has none`, { typeUrl, name: encoded.name });
    }
    byName.set(encoded.name, encoded);
  }
  const removed: EncodedResource[] = [];
  const added: EncodedResource[] = [];
  for (const [name, encoded] of byName) {
    const old = current.get(name)!;
    if (old.version === encoded.version) continue;
    removed.push(old);
    added.push(encoded);
  }
  return { removed, added };
}

/**
 * The last replace made of each type map: what it replaced and the map it made. The map made is
 * held weakly: a map kept alive (e.g. by a group no change concerns) must not keep every later
 * map of the chain it started alive with it.
 */
const replacements = new WeakMap<ReadonlyMap<string, EncodedResource>, { readonly added: readonly EncodedResource[]; readonly map: WeakRef<ReadonlyMap<string, EncodedResource>> }>();

/**
 * `current` with `added` put in by name. Many snapshots share one type map (a translator that
 * returns the same list for many proxies, and the maps this makes), and an endpoint change
 * replaces the same entries in each of them: the first such replace of a map makes the new
 * map, and the others with the same entries (the same encoded objects) share it, so its copy,
 * and what readers derive from a map once (the server's name order), are paid once per change.
 */
function replacedMap(current: ReadonlyMap<string, EncodedResource>, added: readonly EncodedResource[]): ReadonlyMap<string, EncodedResource> {
  const last = replacements.get(current);
  if (last && last.added.length === added.length && last.added.every((r, i) => r === added[i])) {
    const made = last.map.deref();
    if (made) return made;
  }
  const map = new Map(current);
  for (const r of added) map.set(r.name, r);
  replacements.set(current, { added, map: new WeakRef(map) });
  return map;
}

const emptyMap: ReadonlyMap<string, EncodedResource> = new Map();
const consistentResult: ConsistencyResult = Object.freeze({ ok: true, problems: Object.freeze([]) as readonly string[] });

const emptySnapshot = Snapshot.build({}, { encoder: new ResourceEncoder() });

/** Throws `XDS_SNAPSHOT_INCONSISTENT` listing the dangling references. */
export function assertConsistent(snapshot: Snapshot): void {
  const result = snapshot.consistent();
  if (!result.ok) {
    throw new AviaryError('FAILED_PRECONDITION', 'XDS_SNAPSHOT_INCONSISTENT', `snapshot is inconsistent: ${result.problems.join('; ')}`, { problems: result.problems });
  }
}
