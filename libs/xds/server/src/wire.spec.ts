import { describe, expect, it } from 'vitest';
import { MessageName } from '@aviary/xds-api';
import { ResourceEncoder, Snapshot } from '@aviary/xds-cache';
import { decodeResource, lookupType, TypeUrl } from '@aviary/xds-protos';
import { encodeDiscoveryResponse } from './wire';

describe('encodeDiscoveryResponse', () => {
  it('writes exactly what protobufjs writes for the same DiscoveryResponse', () => {
    const long = 'x'.repeat(300);
    const snapshot = Snapshot.build({ [TypeUrl.Cluster]: [{ name: 'a', type: 'STATIC' }, { name: `b-${long}`, type: 'STATIC' }] }, { encoder: new ResourceEncoder() });
    const resources = [...snapshot.resources(TypeUrl.Cluster).values()];
    const parts = { version: 'v1-é', typeUrl: TypeUrl.Cluster, nonce: '7-1', resources, controlPlaneId: 'pilot-é' };
    const type = lookupType(MessageName.DiscoveryResponse);
    const message = (controlPlane: boolean) =>
      type
        .encode(
          type.fromObject({
            version_info: parts.version,
            resources: resources.map((r) => ({ type_url: r.typeUrl, value: r.bytes })),
            type_url: parts.typeUrl,
            nonce: parts.nonce,
            ...(controlPlane && { control_plane: { identifier: parts.controlPlaneId } }),
          }),
        )
        .finish();
    expect(Buffer.from(encodeDiscoveryResponse(parts)).equals(Buffer.from(message(true)))).toBe(true);
    const { controlPlaneId: _drop, ...withoutId } = parts;
    expect(Buffer.from(encodeDiscoveryResponse(withoutId)).equals(Buffer.from(message(false)))).toBe(true);
    const decoded = type.decode(encodeDiscoveryResponse(parts)) as unknown as { resources: { type_url: string; value: Uint8Array }[] };
    expect(decoded.resources.map((a) => decodeResource(a.type_url, a.value).name)).toEqual(['a', `b-${long}`]);
  });
});
