export { NatsServer, NatsCluster, findNatsServer, freePort, cachedNatsServerPath } from './runner';
export type { NatsExit, NatsServerOptions, NatsClusterOptions } from './runner';
