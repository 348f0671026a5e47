import type { Logger } from 'pino';
import { OIDC_DISCOVERY_SUFFIX, type JwksResolution } from '@aviary/mesh-model';

/**
 * Pilot's JWKS source, an I/O adapter outside the (pure) model and translator: fetches the key
 * sets that RequestAuthentication `jwksUri`s name (or that an issuer's OpenID Connect discovery
 * document points to when a rule has neither `jwks` nor `jwksUri`), with a timeout (the rule's `timeout`, else
 * the default) and a size limit, caches them, refreshes them, and hands the model the result
 * (`SnapshotBuilder.setJwks`). Envoy never fetches keys (it would need a cluster to the
 * issuer): pilot inlines them. A URI that never answered is an error (the translator fails
 * closed for that issuer); once fetched, a failed refresh keeps the last good key set (Istio's
 * behaviour) until it succeeds again. Redirects are refused.
 */

export interface JwksResolverOptions {
  /** Per-fetch timeout when the rule sets none (ms). */
  readonly timeoutMs: number;
  /** Largest accepted JWKS document (bytes). */
  readonly maxBytes: number;
  /** How often a fetched key set is fetched again (ms). */
  readonly refreshMs: number;
  /** How soon a failed fetch is tried again (ms). */
  readonly retryMs: number;
  /** Most distinct URIs followed at once; the rest are errors (bounded memory and requests). */
  readonly maxUris: number;
  readonly logger: Logger;
  /** Called (outside any fetch) when the resolutions changed. */
  readonly onChange: (resolutions: ReadonlyMap<string, JwksResolution>) => void;
  readonly fetch?: typeof fetch;
}

export const defaultJwksOptions = { timeoutMs: 5_000, maxBytes: 512 * 1024, refreshMs: 20 * 60_000, retryMs: 30_000, maxUris: 1_000 } as const;

interface Entry {
  timeoutMs: number;
  resolution: JwksResolution | undefined;
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
}

/** Reads a body up to `max` bytes; throws past it. */
async function readLimited(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) throw new Error(`JWKS is ${declared} bytes, more than the ${max} allowed`);
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new Error(`JWKS is more than the ${max} bytes allowed`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The JWKS in compact JSON, or throws when it is not a key set. */
export function normalizeJwks(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('JWKS is not JSON');
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error('JWKS has no "keys" list');
  for (const k of keys) if (typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string') throw new Error('JWKS key without "kty"');
  return JSON.stringify(parsed);
}

export class JwksResolver {
  private readonly entries = new Map<string, Entry>();
  private readonly fetchFn: typeof fetch;
  private stopped = false;

  constructor(private readonly opts: JwksResolverOptions) {
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** The URIs the model names now (with the shortest rule timeout): starts new ones, forgets gone ones. */
  sync(uris: ReadonlyMap<string, number | undefined>): void {
    if (this.stopped) return;
    let changed = false;
    for (const [uri, e] of this.entries) {
      if (uris.has(uri)) continue;
      if (e.timer) clearTimeout(e.timer);
      this.entries.delete(uri);
      changed = true;
    }
    for (const [uri, timeout] of uris) {
      const existing = this.entries.get(uri);
      if (existing) {
        existing.timeoutMs = timeout ?? this.opts.timeoutMs;
        continue;
      }
      const entry: Entry = { timeoutMs: timeout ?? this.opts.timeoutMs, resolution: undefined, timer: undefined, inFlight: false };
      this.entries.set(uri, entry);
      if (this.entries.size > this.opts.maxUris) {
        entry.resolution = { error: `more than ${this.opts.maxUris} distinct jwksUri values; not fetched` };
        changed = true;
        continue;
      }
      void this.refresh(uri, entry);
    }
    if (changed) this.opts.onChange(this.current());
  }

  current(): ReadonlyMap<string, JwksResolution> {
    const out = new Map<string, JwksResolution>();
    for (const [uri, e] of this.entries) if (e.resolution) out.set(uri, e.resolution);
    return out;
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
    this.entries.clear();
  }

  private async refresh(uri: string, entry: Entry): Promise<void> {
    if (entry.inFlight || this.stopped) return;
    entry.inFlight = true;
    let next: JwksResolution;
    let failed = false;
    try {
      next = { jwks: await this.fetchOnce(uri, entry.timeoutMs) };
    } catch (err) {
      failed = true;
      const reason = (err as Error).name === 'TimeoutError' ? `timed out after ${entry.timeoutMs} ms` : (err as Error).message;
      this.opts.logger.warn({ uri, reason }, 'JWKS fetch failed');
      // A refresh failure keeps the last good key set; only a URI never fetched becomes an error.
      next = entry.resolution !== undefined && 'jwks' in entry.resolution ? entry.resolution : { error: `GET ${uri}: ${reason}` };
    } finally {
      entry.inFlight = false;
    }
    if (this.stopped || this.entries.get(uri) !== entry) return;
    const changed = JSON.stringify(next) !== JSON.stringify(entry.resolution);
    entry.resolution = next;
    entry.timer = setTimeout(() => void this.refresh(uri, entry), failed ? this.opts.retryMs : this.opts.refreshMs);
    entry.timer.unref();
    if (changed) this.opts.onChange(this.current());
  }

  /** One fetch (two for an OpenID Connect discovery document: it, then its `jwks_uri`), within one timeout. */
  private async fetchOnce(uri: string, timeoutMs: number): Promise<string> {
    const signal = AbortSignal.timeout(timeoutMs);
    const get = async (url: string): Promise<string> => {
      const res = await this.fetchFn(url, { signal, redirect: 'error', headers: { accept: 'application/json' } });
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}${url === uri ? '' : ` from ${url}`}`);
      }
      return readLimited(res, this.opts.maxBytes);
    };
    if (!uri.endsWith(OIDC_DISCOVERY_SUFFIX)) return normalizeJwks(await get(uri));
    let jwksUri: unknown;
    try {
      jwksUri = (JSON.parse(await get(uri)) as { jwks_uri?: unknown } | null)?.jwks_uri;
    } catch (err) {
      if (err instanceof SyntaxError) throw new Error('OpenID Connect discovery document is not JSON');
      throw err;
    }
    if (typeof jwksUri !== 'string' || !/^https?:\/\//.test(jwksUri)) throw new Error('OpenID Connect discovery document has no http(s) "jwks_uri"');
    return normalizeJwks(await get(jwksUri));
  }
}
