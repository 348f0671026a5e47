export {
  Snapshot,
  ResourceEncoder,
  VersionedResource,
  versioned,
  defaultEncoder,
  resourceNameOf,
  assertConsistent,
} from './snapshot';
export type { EncodedResource, ResourceEntry, SnapshotInput, ConsistencyResult } from './snapshot';
export { referencedRouteNames, referencedEndpointName, referencedClusterNames } from './consistency';
export { mergeChanges, ChangeEmitter, changeReasons } from './source';
export type { SourceChange, ChangeListener, ChangeReason, ResourceSource, XdsPeer } from './source';
export { TranslatingSource } from './translating-source';
export type { TranslatingSourceOptions } from './translating-source';
export { Debouncer, systemClock } from './debounce';
export type { Clock, DebouncerOptions } from './debounce';
