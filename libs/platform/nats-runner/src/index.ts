export { NatsServer, findNatsServer, freePort, cachedNatsServerPath } from './runner';
export type { NatsServerOptions } from './runner';
