import protobuf from 'protobufjs';

/**
 * Fields of Envoy 1.40's API that the proto copies under @grpc/grpc-js-xds (an older API
 * snapshot) lack, added to the loaded root with Envoy's own field numbers (read from the
 * descriptors of the `xds-protos` 1.85 Python package, which tracks the same API):
 * - `envoy.config.rbac.v3.SourcedMetadata` and `Principal.sourced_metadata = 13` /
 *   `Permission.sourced_metadata = 14` (both in their oneof): Envoy 1.40 deprecates
 *   `Principal.metadata`/`Permission.metadata` in their favour and warns on the old fields.
 * A patch is skipped when the loaded copy already has the field.
 */

const RBAC_SOURCED_METADATA = `syntax = "proto3";
package envoy.config.rbac.v3;
enum MetadataSource { DYNAMIC = 0; ROUTE = 1; }
message SourcedMetadata {
  envoy.type.matcher.v3.MetadataMatcher metadata_matcher = 1;
  MetadataSource metadata_source = 2;
}
`;

function addOneofField(root: protobuf.Root, typeName: string, oneof: string, name: string, id: number, type: string): void {
  const t = root.lookupType(typeName);
  if (t.fields[name] !== undefined) return;
  const field = new protobuf.Field(name, id, type);
  const group = t.oneofs?.[oneof];
  if (group) group.add(field);
  else t.add(field);
  // The root may have resolved this type already (cached field list): resolve the new field now.
  field.resolve();
}

/** Applies the patches to a root whose files are loaded but not yet resolved. */
export function applyProtoPatches(root: protobuf.Root): void {
  const rbac = root.lookup('envoy.config.rbac.v3');
  if (!rbac || root.lookup('envoy.config.rbac.v3.SourcedMetadata')) return;
  protobuf.parse(RBAC_SOURCED_METADATA, root, { keepCase: true });
  addOneofField(root, 'envoy.config.rbac.v3.Principal', 'identifier', 'sourced_metadata', 13, 'envoy.config.rbac.v3.SourcedMetadata');
  addOneofField(root, 'envoy.config.rbac.v3.Permission', 'rule', 'sourced_metadata', 14, 'envoy.config.rbac.v3.SourcedMetadata');
}
