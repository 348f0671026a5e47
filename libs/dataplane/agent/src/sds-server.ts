import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { EncodedResource } from '@aviary/xds-cache';
import { canonicalResource, encodeResource, TypeUrl } from '@aviary/xds-protos';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, encodeDeltaDiscoveryResponse, encodeDiscoveryResponse, type DeltaDiscoveryRequest, type DiscoveryRequest } from '@aviary/xds-server';

/** Envoy's secret names (CONTRACT.md): the workload certificate and the trust bundle. */
export const WORKLOAD_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';

const SERVICE = '/envoy.service.secret.v3.SecretDiscoveryService';
const identity = (b: Buffer): Buffer => b;
const clientSide = (): never => {
  throw new Error('server side only');
};

/** grpc-js definition of envoy.service.secret.v3.SecretDiscoveryService (sds.proto): SotW and delta streams. */
function sdsServiceDefinition(): grpc.ServiceDefinition {
  const method = (name: string, decode: (b: Buffer) => unknown) => ({
    path: `${SERVICE}/${name}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: clientSide,
    requestDeserialize: decode,
    responseSerialize: identity,
    responseDeserialize: identity,
  });
  return { StreamSecrets: method('StreamSecrets', decodeDiscoveryRequest), DeltaSecrets: method('DeltaSecrets', decodeDeltaDiscoveryRequest) };
}

export interface SdsEvent {
  readonly event: 'stream_opened' | 'stream_closed' | 'ack' | 'nack' | 'pushed' | 'unknown_secret';
  readonly protocol: 'sotw' | 'delta';
  readonly names?: readonly string[];
  readonly error?: string;
  readonly version?: string;
}

/** A `tls_certificate` secret (PEM chain and key). */
export function tlsCertificateSecret(name: string, certChain: string, privateKey: string): Record<string, unknown> {
  return { name, tls_certificate: { certificate_chain: { inline_string: certChain }, private_key: { inline_string: privateKey } } };
}

/** A `validation_context` secret trusting `roots` (PEM). */
export function validationContextSecret(name: string, roots: readonly string[]): Record<string, unknown> {
  return { name, validation_context: { trusted_ca: { inline_string: roots.map((r) => (r.endsWith('\n') ? r : `${r}\n`)).join('') } } };
}

interface Stream {
  readonly protocol: 'sotw' | 'delta';
  readonly names: Set<string>;
  /** name → version last sent on this stream. */
  readonly sent: Map<string, string>;
  write(buf: Buffer): void;
  nonce: number;
}

/**
 * The agent's SDS server for its Envoy, on a Unix socket in the agent's work dir. It holds the
 * secrets by name; `set()` pushes a new version to every stream that asked for that name (Envoy
 * swaps the certificate for new handshakes; open connections stay up). A name not known yet is
 * not answered, so Envoy keeps the listener or cluster warming (pilot sets initial_fetch_timeout 0s).
 */
export class SdsServer {
  private readonly secrets = new Map<string, EncodedResource>();
  private readonly streams = new Set<Stream>();
  private server: grpc.Server | undefined;
  private version = 0;
  private readonly reportedUnknown = new Set<string>();

  constructor(private readonly onEvent: (e: SdsEvent) => void = () => undefined) {}

  /** Binds `unix:<path>` (a stale socket file from an earlier run is removed first). */
  async listen(socketPath: string): Promise<void> {
    mkdirSync(dirname(socketPath), { recursive: true });
    rmSync(socketPath, { force: true });
    const server = new grpc.Server();
    server.addService(sdsServiceDefinition(), {
      StreamSecrets: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => this.serve(call, 'sotw'),
      DeltaSecrets: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) => this.serve(call, 'delta'),
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    this.server = server;
  }

  /** Names currently held. */
  names(): string[] {
    return [...this.secrets.keys()];
  }

  /** Adds or replaces a secret (validated and encoded as envoy.extensions.transport_sockets.tls.v3.Secret) and pushes it. */
  set(secret: Record<string, unknown>): void {
    const name = String(secret['name']);
    const resource = canonicalResource(TypeUrl.Secret, secret);
    const encoded: EncodedResource = { typeUrl: TypeUrl.Secret, name, version: String(++this.version), resource, bytes: encodeResource(TypeUrl.Secret, secret) };
    this.secrets.set(name, encoded);
    for (const s of this.streams) if (s.names.has(name)) this.push(s);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.forceShutdown();
    this.streams.clear();
  }

  private serve(call: grpc.ServerDuplexStream<DiscoveryRequest & DeltaDiscoveryRequest, Buffer>, protocol: 'sotw' | 'delta'): void {
    const stream: Stream = {
      protocol,
      names: new Set(),
      sent: new Map(),
      nonce: 0,
      write: (buf) => {
        if (call.writable && !call.cancelled) call.write(buf);
      },
    };
    this.streams.add(stream);
    this.onEvent({ event: 'stream_opened', protocol });
    const close = (): void => {
      if (this.streams.delete(stream)) this.onEvent({ event: 'stream_closed', protocol });
    };
    call.on('data', (req: DiscoveryRequest & DeltaDiscoveryRequest) => (protocol === 'sotw' ? this.onSotw(stream, req) : this.onDelta(stream, req)));
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('cancelled', close);
    call.on('error', close);
    call.on('close', close);
  }

  private onSotw(s: Stream, req: DiscoveryRequest): void {
    if (req.type_url !== undefined && req.type_url !== '' && req.type_url !== TypeUrl.Secret) return;
    const nonce = req.response_nonce ?? '';
    if (nonce !== '' && nonce !== String(s.nonce)) return; // stale: a newer response is on its way
    if (nonce !== '') this.ackOrNack(s, req.error_detail, req.version_info);
    const names = new Set(req.resource_names ?? []);
    const changed = names.size !== s.names.size || [...names].some((n) => !s.names.has(n));
    if (!changed && nonce !== '') return;
    s.names.clear();
    for (const n of names) s.names.add(n);
    s.sent.clear();
    this.push(s);
  }

  private onDelta(s: Stream, req: DeltaDiscoveryRequest): void {
    if (req.type_url !== undefined && req.type_url !== '' && req.type_url !== TypeUrl.Secret) return;
    const nonce = req.response_nonce ?? '';
    if (nonce !== '') this.ackOrNack(s, req.error_detail, undefined);
    for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) s.sent.set(name, version);
    for (const n of req.resource_names_subscribe ?? []) s.names.add(n);
    for (const n of req.resource_names_unsubscribe ?? []) {
      s.names.delete(n);
      s.sent.delete(n);
    }
    this.push(s);
  }

  private ackOrNack(s: Stream, error: { message?: string } | undefined, version: string | undefined): void {
    if (error !== undefined && (error.message ?? '') !== '') this.onEvent({ event: 'nack', protocol: s.protocol, error: error.message ?? '' });
    else this.onEvent({ event: 'ack', protocol: s.protocol, ...(version === undefined ? {} : { version }) });
  }

  /** Sends what this stream asked for and has not got in its current version. */
  private push(s: Stream): void {
    for (const n of s.names) {
      // Only `default` and `ROOTCA` are the agent's; anything else (e.g. kubernetes://<name>) stays unanswered.
      if (n !== WORKLOAD_SECRET && n !== ROOT_SECRET && !this.secrets.has(n) && !this.reportedUnknown.has(n)) {
        this.reportedUnknown.add(n);
        this.onEvent({ event: 'unknown_secret', protocol: s.protocol, names: [n] });
      }
    }
    const wanted = [...s.names].map((n) => this.secrets.get(n)).filter((r): r is EncodedResource => r !== undefined);
    const fresh = wanted.filter((r) => s.sent.get(r.name) !== r.version);
    if (fresh.length === 0) return;
    const nonce = String(++s.nonce);
    const version = String(this.version);
    // SotW: every requested secret we hold (a response replaces the stream's state); delta: the changed ones.
    const resources = s.protocol === 'sotw' ? wanted : fresh;
    s.write(s.protocol === 'sotw' ? encodeDiscoveryResponse({ version, typeUrl: TypeUrl.Secret, nonce, resources }) : encodeDeltaDiscoveryResponse({ version, typeUrl: TypeUrl.Secret, nonce, resources, removed: [] }));
    for (const r of resources) s.sent.set(r.name, r.version);
    this.onEvent({ event: 'pushed', protocol: s.protocol, names: resources.map((r) => r.name), version });
  }
}
