export { resourceVersionConflict } from './store';
export type { ApplyOptions, ApplyResult, ChangeEvent, ChangeOp, ConfigStore, ListFilter, Watch } from './store';
export { diffObjects, sameContent, userContent } from './compare';
export type { FieldChange } from './compare';
export { KvConfigStore, kvKey, refFromKey } from './kv-store';
export type { KvConfigStoreOptions } from './kv-store';
export { announcingChanges, changeMessageId } from './announcing';
export type { DurablePublisher } from './announcing';
