export {
  TYPE_URL_PREFIX,
  TypeUrl,
  resourceTypeUrls,
  shortTypeName,
  isResourceTypeUrl,
  typeNameOf,
  defaultProtoFiles,
  defaultDepsDir,
  loadXdsRoot,
  initXdsRoot,
  xdsRoot,
  lookupType,
} from './root';
export type { ResourceTypeUrl, LoadOptions } from './root';
export {
  packAny,
  unpackAny,
  encodeResource,
  decodeResource,
  encodeMessageOf,
  decodeMessageOf,
  canonicalMessage,
  canonicalResource,
  assertRoundTrip,
} from './codec';
export type { CanonicalMessage, PackedAny } from './codec';
export { structToJs, jsToStruct, valueToJs, jsToValue } from './struct';
export type { JsonValue } from './struct';
