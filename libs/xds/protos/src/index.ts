// The type URLs are @aviary/xds-api's; re-exported for the codec's callers.
export { TYPE_URL_PREFIX, TypeUrl, resourceTypeUrls, shortTypeName, isResourceTypeUrl, typeNameOf } from '@aviary/xds-api';
export type { ResourceTypeUrl } from '@aviary/xds-api';
export {
  defaultProtoFiles,
  defaultDepsDir,
  loadXdsRoot,
  initXdsRoot,
  xdsRoot,
  lookupType,
} from './root';
export type { LoadOptions } from './root';
export {
  packAny,
  unpackAny,
  encodeResource,
  decodeResource,
  encodeMessageOf,
  decodeMessageOf,
  canonicalResource,
  assertRoundTrip,
} from './codec';
export type { PackedAny } from './codec';
export { canonicalMessage } from './canonical';
export type { CanonicalMessage } from './canonical';
export { encodeCanonical, encodeCanonicalAfter } from './canonical-writer';
export { varint32Size, writeVarint32 } from './wire';
export { LookupPolicy } from './lookup-policy';
export { structToJs, jsToStruct, valueToJs, jsToValue } from './struct';
export type { JsonValue } from './struct';
