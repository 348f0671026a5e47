import protobuf from 'protobufjs';
import type { ServiceDefinition } from '@grpc/grpc-js';
import type { EncodedResource } from '@aviary/xds-cache';
import { lookupType, structToJs } from '@aviary/xds-protos';

/**
 * Wire codecs of the ADS service. Requests are decoded with protobufjs; responses are written
 * by hand so each resource's bytes (encoded once in the cache) are copied in as they are.
 */

export interface WireNode {
  readonly id?: string;
  readonly cluster?: string;
  readonly metadata?: Record<string, unknown>;
  readonly locality?: { region?: string; zone?: string; sub_zone?: string };
  readonly user_agent_name?: string;
}

export interface ErrorDetail {
  readonly code?: number;
  readonly message?: string;
}

export interface DiscoveryRequest {
  readonly version_info?: string;
  readonly node?: WireNode;
  readonly resource_names?: string[];
  readonly type_url?: string;
  readonly response_nonce?: string;
  readonly error_detail?: ErrorDetail;
}

export interface DeltaDiscoveryRequest {
  readonly node?: WireNode;
  readonly type_url?: string;
  readonly resource_names_subscribe?: string[];
  readonly resource_names_unsubscribe?: string[];
  readonly initial_resource_versions?: Record<string, string>;
  readonly response_nonce?: string;
  readonly error_detail?: ErrorDetail;
}

const toObjectOptions: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: String, defaults: false, arrays: true, objects: true };

function decodeWith<T>(typeName: string): (buf: Buffer) => T {
  const type = lookupType(typeName);
  return (buf) => {
    const obj = type.toObject(type.decode(buf), toObjectOptions) as Record<string, unknown>;
    const node = obj.node as Record<string, unknown> | undefined;
    if (node?.metadata) node.metadata = structToJs(node.metadata as Parameters<typeof structToJs>[0]);
    return obj as T;
  };
}

export const decodeDiscoveryRequest = decodeWith<DiscoveryRequest>('envoy.service.discovery.v3.DiscoveryRequest');
export const decodeDeltaDiscoveryRequest = decodeWith<DeltaDiscoveryRequest>('envoy.service.discovery.v3.DeltaDiscoveryRequest');

const anyCache = new WeakMap<EncodedResource, Uint8Array>();

/** The Any of a resource, encoded once per resource version. */
export function anyBytesOf(resource: EncodedResource): Uint8Array {
  let bytes = anyCache.get(resource);
  if (!bytes) {
    bytes = protobuf.Writer.create().uint32(10).string(resource.typeUrl).uint32(18).bytes(resource.bytes).finish();
    anyCache.set(resource, bytes);
  }
  return bytes;
}

function controlPlane(w: protobuf.Writer, field: number, identifier: string | undefined): void {
  if (identifier) w.uint32((field << 3) | 2).fork().uint32(10).string(identifier).ldelim();
}

export interface ResponseParts {
  readonly version: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly EncodedResource[];
  readonly controlPlaneId?: string;
}

/** envoy.service.discovery.v3.DiscoveryResponse */
export function encodeDiscoveryResponse(p: ResponseParts): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(10).string(p.version);
  for (const r of p.resources) w.uint32(18).bytes(anyBytesOf(r));
  w.uint32(34).string(p.typeUrl);
  w.uint32(42).string(p.nonce);
  controlPlane(w, 6, p.controlPlaneId);
  return Buffer.from(w.finish());
}

/** envoy.service.discovery.v3.DeltaDiscoveryResponse */
export function encodeDeltaDiscoveryResponse(p: ResponseParts & { readonly removed: readonly string[] }): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(10).string(p.version);
  for (const r of p.resources) {
    w.uint32(18).fork();
    w.uint32(10).string(r.version);
    w.uint32(18).bytes(anyBytesOf(r));
    w.uint32(26).string(r.name);
    w.ldelim();
  }
  w.uint32(34).string(p.typeUrl);
  w.uint32(42).string(p.nonce);
  for (const name of p.removed) w.uint32(50).string(name);
  controlPlane(w, 7, p.controlPlaneId);
  return Buffer.from(w.finish());
}

const identity = (b: Buffer): Buffer => b;
const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

/** grpc-js definition of envoy.service.discovery.v3.AggregatedDiscoveryService (ads.proto). */
export function adsServiceDefinition(): ServiceDefinition {
  return {
    StreamAggregatedResources: {
      path: `${SERVICE}/StreamAggregatedResources`,
      requestStream: true,
      responseStream: true,
      requestSerialize: () => {
        throw new Error('server side only');
      },
      requestDeserialize: decodeDiscoveryRequest,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: 'streamAggregatedResources',
    },
    DeltaAggregatedResources: {
      path: `${SERVICE}/DeltaAggregatedResources`,
      requestStream: true,
      responseStream: true,
      requestSerialize: () => {
        throw new Error('server side only');
      },
      requestDeserialize: decodeDeltaDiscoveryRequest,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: 'deltaAggregatedResources',
    },
  };
}
