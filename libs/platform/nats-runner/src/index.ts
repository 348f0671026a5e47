export { NatsServer, findNatsServer, freePort, cachedNatsServerPath } from './runner';
export type { NatsExit, NatsServerOptions } from './runner';
