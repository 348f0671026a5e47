import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import descriptorJson from 'protobufjs/google/protobuf/descriptor.json';
import { AviaryError } from '@aviary/errors';

/**
 * The Envoy v3 protos, loaded with protobufjs from the copies that `@grpc/grpc-js-xds` ships
 * under `deps/` (envoy-api, xds, googleapis, protoc-gen-validate). `google/protobuf/*` comes
 * from protobufjs itself; `descriptor.proto` is registered here because the validate and
 * annotation protos import it.
 *
 * Field names keep the proto spelling (`keepCase`): resources are written as snake_case
 * objects, exactly as Envoy's YAML/JSON and config_dump spell them.
 */

/**
 * Proto files loaded into the root: the discovery service, the five resource types and the
 * extensions a mesh translator packs into `typed_config` Anys. Anything these import comes
 * along. Add a file here (or pass `extraFiles`) before packing a type from another extension.
 */
export const defaultProtoFiles: readonly string[] = Object.freeze([
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/rbac/v3/rbac.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/extensions/filters/http/header_to_metadata/v3/header_to_metadata.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/service/accesslog/v3/als.proto',
]);

/**
 * protobufjs's bundled struct.proto is camelCase (`stringValue`); with keepCase every other
 * field is snake_case, so Struct is defined here with its proto names (same numbers as
 * google/protobuf/struct.proto) and registered before loading.
 */
const STRUCT_PROTO = `syntax = "proto3";
package google.protobuf;
message Struct { map<string, Value> fields = 1; }
message Value {
  oneof kind {
    NullValue null_value = 1;
    double number_value = 2;
    string string_value = 3;
    bool bool_value = 4;
    Struct struct_value = 5;
    ListValue list_value = 6;
  }
}
enum NullValue { NULL_VALUE = 0; }
message ListValue { repeated Value values = 1; }
`;

const depDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'] as const;

let registered = false;
function registerDescriptor(): void {
  if (registered) return;
  const nested = (descriptorJson as { nested: { google: { nested: { protobuf: { nested: Record<string, unknown> } } } } }).nested;
  protobuf.common('descriptor', nested.google.nested.protobuf.nested);
  registered = true;
}

const DEPS_SUBPATH = join('node_modules', '@grpc', 'grpc-js-xds', 'deps');

/**
 * `node_modules/@grpc/grpc-js-xds/deps` in the nearest ancestor (of this module, then of the
 * working directory) that has it. Only .proto files are read from there; no gRPC code is loaded.
 */
export function defaultDepsDir(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      const candidate = join(dir, DEPS_SUBPATH);
      if (existsSync(candidate)) return candidate;
      if (dirname(dir) === dir) break;
    }
  }
  throw new AviaryError('INTERNAL', 'XDS_PROTOS_NOT_FOUND', `no ${DEPS_SUBPATH} above ${process.cwd()}; pass depsDir to initXdsRoot`);
}

export interface LoadOptions {
  /** Directory holding envoy-api/, xds/, googleapis/, protoc-gen-validate/. */
  readonly depsDir?: string;
  /** Extra proto files (relative to one of the dep dirs) loaded after the defaults. */
  readonly extraFiles?: readonly string[];
}

/** Loads a fresh root. Prefer `xdsRoot()`, which loads the default set once per process. */
export function loadXdsRoot(options: LoadOptions = {}): protobuf.Root {
  registerDescriptor();
  const base = options.depsDir ?? defaultDepsDir();
  const includeDirs = depDirs.map((d) => join(base, d));
  const root = new protobuf.Root();
  root.resolvePath = (origin: string, target: string): string | null => {
    if (target.startsWith('google/protobuf/') && protobuf.common.get(target)) return target;
    for (const dir of includeDirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return protobuf.util.path.resolve(origin, target);
  };
  try {
    root.files.push('google/protobuf/struct.proto');
    protobuf.parse(STRUCT_PROTO, root, { keepCase: true });
    root.loadSync([...defaultProtoFiles, ...(options.extraFiles ?? [])], { keepCase: true });
    root.resolveAll();
  } catch (cause) {
    throw new AviaryError('INTERNAL', 'XDS_PROTOS_LOAD_FAILED', `cannot load the Envoy protos from ${base}: ${(cause as Error).message}`, { depsDir: base }, { cause });
  }
  return root;
}

let shared: protobuf.Root | undefined;

/**
 * Loads the process-wide root with these options (e.g. `depsDir` from app config when the
 * protos are not next to node_modules). Call before anything encodes; a second call fails.
 */
export function initXdsRoot(options: LoadOptions): protobuf.Root {
  if (shared) throw new AviaryError('FAILED_PRECONDITION', 'XDS_PROTOS_ALREADY_LOADED', 'the Envoy protos are already loaded');
  shared = loadXdsRoot(options);
  return shared;
}

/** The process-wide root (`defaultProtoFiles` from `defaultDepsDir()` unless `initXdsRoot` ran first). */
export function xdsRoot(): protobuf.Root {
  shared ??= loadXdsRoot();
  return shared;
}

const typeCache = new Map<string, protobuf.Type>();

/** A message type of the shared root by full name (`envoy.config.cluster.v3.Cluster`). */
export function lookupType(fullName: string): protobuf.Type {
  const cached = typeCache.get(fullName);
  if (cached) return cached;
  let type: protobuf.Type;
  try {
    type = xdsRoot().lookupType(fullName);
  } catch {
    throw new AviaryError('INVALID_ARGUMENT', 'XDS_UNKNOWN_TYPE', `message type ${fullName} is not loaded`, { type: fullName });
  }
  typeCache.set(fullName, type);
  return type;
}
