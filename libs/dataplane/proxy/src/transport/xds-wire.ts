import * as grpc from '@grpc/grpc-js';
import { AdsService, type RpcMethod } from '@aviary/xds-api';
import { decodeMessageOf, encodeMessageOf, jsToStruct } from '@aviary/xds-protos';

/** The two ADS flavours: state of the world and incremental (delta). */
export type XdsWireProtocol = 'delta' | 'sotw';
/** `auto`: delta first, state of the world when the server does not implement delta. */
export type XdsProtocol = 'auto' | XdsWireProtocol;

export interface XdsNode {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
  readonly locality?: { readonly region?: string; readonly zone?: string; readonly sub_zone?: string };
}

export type Message = Record<string, unknown>;
export type AdsStream = grpc.ClientDuplexStream<Message, Message>;

const wire: Readonly<Record<XdsWireProtocol, RpcMethod>> = { sotw: AdsService.sotw, delta: AdsService.delta };

/** Opens an ADS stream of `protocol` (StreamAggregatedResources or DeltaAggregatedResources). */
export function openAdsStream(client: grpc.Client, protocol: XdsWireProtocol): AdsStream {
  const w = wire[protocol];
  return client.makeBidiStreamRequest(
    w.path,
    (req: Message) => Buffer.from(encodeMessageOf(w.request, req)),
    (buf: Buffer) => decodeMessageOf(w.response, buf),
  ) as AdsStream;
}

/** The node as sent in the first request of a stream. */
export function wireNode(node: XdsNode): Message {
  return {
    id: node.id,
    cluster: node.cluster,
    metadata: jsToStruct(node.metadata as Parameters<typeof jsToStruct>[0]),
    ...(node.locality === undefined ? {} : { locality: node.locality }),
    user_agent_name: 'aviary-gateway',
  };
}

/** google.rpc.Status of a NACK (INVALID_ARGUMENT), with the message capped as Envoy does. */
export function errorDetail(message: string): Message {
  return { code: grpc.status.INVALID_ARGUMENT, message: message.slice(0, 16_000) };
}

/** Whether a stream failed because the server does not serve the method (SotW-only servers for delta). */
export function isUnimplemented(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === grpc.status.UNIMPLEMENTED;
}

/**
 * The resources of a response as plain messages of `typeUrl`, with the names and versions the
 * envelope gives (delta `Resource` wrappers; SotW resources carry neither), or the reason the
 * response is unusable as a whole.
 */
export function unwrapResources(
  protocol: XdsWireProtocol,
  typeUrl: string,
  res: Message,
): { readonly raws: Message[]; readonly versions: ReadonlyMap<string, string> } | { readonly error: string } {
  const raws: Message[] = [];
  const versions = new Map<string, string>();
  for (const item of (res.resources as Message[] | undefined) ?? []) {
    const any = protocol === 'delta' ? (item.resource as Message | undefined) : item;
    if (protocol === 'delta') {
      const name = String(item.name ?? '');
      if (name === '') return { error: 'delta resource without a name' };
      if (any === undefined) return { error: `delta resource ${name} has no body` };
      versions.set(name, String(item.version ?? ''));
    }
    const { '@type': t, ...rest } = any as Message;
    if (t !== typeUrl) return { error: `resource type ${String(t ?? (any as Message).type_url)} does not match response type ${typeUrl}` };
    raws.push(rest);
  }
  return { raws, versions };
}
