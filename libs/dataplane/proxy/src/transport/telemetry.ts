/** The batcher moved to `@aviary/access-log` (the agent publishes Envoy's records with it); kept here until this lib is deleted. */
export { RecordBatcher } from '@aviary/access-log';
export type { BatcherOptions } from '@aviary/access-log';
