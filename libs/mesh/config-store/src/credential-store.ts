import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';
import { AviaryError } from '@aviary/errors';
import { busBuckets, type Bus } from '@aviary/events';
import { checkCredential, MAX_CREDENTIAL_FIELD_BYTES, type CredentialPem, type CredentialSummary } from '@aviary/pki';

/** The field names of a stored credential, as the REST API and its errors name them. */
export const credentialFields = { cert: 'certChain', key: 'privateKey', ca: 'caCert' } as const;

/** What the store shows about a credential: names, validity, fingerprints; never the key. */
export interface CredentialMetadata extends CredentialSummary {
  readonly namespace: string;
  readonly name: string;
  /** The KV revision: changes with every write (the SDS version pilot serves). */
  readonly revision: string;
  readonly updatedAt: string;
  readonly hasPrivateKey: boolean;
}

/** A stored credential as pilot hands it to the mesh model (`GatewayCredential`). */
export interface CredentialMaterial extends CredentialPem {
  readonly version: string;
}

interface StoredValue extends CredentialPem {
  readonly updatedAt: string;
}

const NAMESPACE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

function checkRef(namespace: string, name: string): string {
  if (!NAMESPACE.test(namespace)) throw new AviaryError('INVALID_ARGUMENT', 'INVALID_NAMESPACE', `namespace ${JSON.stringify(namespace)} is not a DNS label (lower case letters, digits, '-', at most 63)`, { field: 'namespace' });
  if (!NAME.test(name)) throw new AviaryError('INVALID_ARGUMENT', 'INVALID_NAME', `name ${JSON.stringify(name)} is not a DNS subdomain (lower case letters, digits, '-', '.', at most 253)`, { field: 'name' });
  return `${namespace}.${name}`;
}

function refOf(key: string): { namespace: string; name: string } {
  const dot = key.indexOf('.');
  return { namespace: key.slice(0, dot), name: key.slice(dot + 1) };
}

function metadata(entry: Pick<KvEntry, 'key' | 'revision'>, value: StoredValue): CredentialMetadata {
  const summary = checkCredential(value, credentialFields);
  return { ...refOf(entry.key), revision: String(entry.revision), updatedAt: value.updatedAt, hasPrivateKey: value.privateKey !== undefined, ...summary };
}

/**
 * The local secret store (local mode's counterpart of Kubernetes TLS Secrets for Gateway
 * `credentialName`): a JetStream KV bucket pilot alone may read or write (busPermissions; its
 * replies come on pilot's private inbox), one key `<namespace>.<name>` per credential, no
 * history (a replaced private key is not kept). Every write is checked first (PEM that parses,
 * sizes, the key of the certificate); reads return metadata only, the key material reaches
 * only `watch` (pilot's model, served by SDS to authenticated proxies).
 */
export class KvCredentialStore {
  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
  ) {}

  static async open(bus: Bus, bucket: string = busBuckets.credentials): Promise<KvCredentialStore> {
    // Three PEM fields at most, plus JSON framing.
    // Reads from the stream's leader, as KvConfigStore: a direct get may be served by a replica behind the last write.
    const kv = await new Kvm(bus.nc).create(bucket, { history: 1, maxValueSize: 3 * MAX_CREDENTIAL_FIELD_BYTES + 4096, replicas: bus.replicas, allow_direct: false });
    return new KvCredentialStore(kv, await jetstreamManager(bus.nc), bucket);
  }

  /** Creates or replaces a credential; throws CREDENTIAL_INVALID naming the field. */
  async put(namespace: string, name: string, pem: CredentialPem, now: Date = new Date()): Promise<{ metadata: CredentialMetadata; created: boolean }> {
    const key = checkRef(namespace, name);
    checkCredential(pem, credentialFields);
    const value: StoredValue = {
      ...(pem.certChain !== undefined && { certChain: pem.certChain }),
      ...(pem.privateKey !== undefined && { privateKey: pem.privateKey }),
      ...(pem.caCert !== undefined && { caCert: pem.caCert }),
      updatedAt: now.toISOString(),
    };
    const before = await this.kv.get(key);
    // The metadata comes from what was written and the revision the put acknowledged: no read back.
    const revision = await this.kv.put(key, JSON.stringify(value));
    return { metadata: metadata({ key, revision }, value), created: before === null || before.operation !== 'PUT' };
  }

  async get(namespace: string, name: string): Promise<CredentialMetadata | undefined> {
    const entry = await this.kv.get(checkRef(namespace, name));
    return entry === null || entry.operation !== 'PUT' ? undefined : metadata(entry, entry.json<StoredValue>());
  }

  /** Every credential (of one namespace when given), by namespace then name. */
  async list(namespace?: string): Promise<CredentialMetadata[]> {
    if (namespace !== undefined) checkRef(namespace, 'x');
    // Keys from the stream's subject list (kv.keys() would leave a consumer behind), as KvConfigStore.
    const prefix = `$KV.${this.bucket}.`;
    const info = await this.jsm.streams.info(`KV_${this.bucket}`, { subjects_filter: `${prefix}${namespace ?? '*'}.>` });
    const keys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
    keys.sort();
    const out: CredentialMetadata[] = [];
    for (const key of keys) {
      const entry = await this.kv.get(key);
      if (entry !== null && entry.operation === 'PUT') out.push(metadata(entry, entry.json<StoredValue>()));
    }
    return out;
  }

  /** Removes a credential and its data (purged, not only marked deleted); false when there was none. */
  async delete(namespace: string, name: string): Promise<boolean> {
    const key = checkRef(namespace, name);
    const entry = await this.kv.get(key);
    if (entry === null || entry.operation !== 'PUT') return false;
    await this.kv.purge(key);
    return true;
  }

  /**
   * Follows the bucket: `onChange` gets every credential (`namespace/name` → PEM and version)
   * once the stored ones are read, then after each change. A value that no longer passes the
   * check (written around the API) is left out and reported through `onInvalid`.
   */
  async watch(onChange: (credentials: ReadonlyMap<string, CredentialMaterial>) => void, onInvalid: (ref: string, err: Error) => void): Promise<{ readonly initialized: Promise<void>; stop(): Promise<void> }> {
    const status = await this.kv.status();
    const lastAtStart = status.streamInfo.state.last_seq;
    const current = new Map<string, CredentialMaterial>();
    let initialized = false;
    let markInitialized: () => void = () => {};
    const ready = new Promise<void>((resolve) => (markInitialized = resolve));
    const settle = (): void => {
      if (initialized) return;
      initialized = true;
      markInitialized();
      onChange(new Map(current));
    };
    if (lastAtStart === 0) settle();
    const iter = await this.kv.watch({ key: '>', include: KvWatchInclude.LastValue });
    const done = (async () => {
      for await (const entry of iter) {
        const { namespace, name } = refOf(entry.key);
        const ref = `${namespace}/${name}`;
        const had = current.has(ref);
        current.delete(ref);
        if (entry.operation === 'PUT') {
          try {
            const value = entry.json<StoredValue>();
            checkCredential(value, credentialFields);
            current.set(ref, {
              version: String(entry.revision),
              ...(value.certChain !== undefined && { certChain: value.certChain }),
              ...(value.privateKey !== undefined && { privateKey: value.privateKey }),
              ...(value.caCert !== undefined && { caCert: value.caCert }),
            });
          } catch (err) {
            onInvalid(ref, err as Error);
          }
        }
        if (initialized && (had || current.has(ref))) onChange(new Map(current));
        if (entry.revision >= lastAtStart) settle();
      }
    })();
    return {
      initialized: ready,
      stop: async () => {
        iter.stop();
        await done.catch(() => undefined);
      },
    };
  }
}
