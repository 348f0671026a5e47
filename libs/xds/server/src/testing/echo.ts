import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Test-only: echo backends and a client stub from libs/xds-server/test/echo.proto. */
const protoPath = fileURLToPath(new URL('../../test/echo.proto', import.meta.url));

interface EchoReply {
  server: string;
  message: string;
}

export interface EchoClient extends grpc.Client {
  Echo(req: { message: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void): grpc.ClientUnaryCall;
}

type EchoClientCtor = new (target: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => EchoClient;

function echoPackage(): { Echo: EchoClientCtor & { service: grpc.ServiceDefinition } } {
  const def = protoLoader.loadSync(protoPath, { keepCase: true });
  const loaded = grpc.loadPackageDefinition(def) as unknown as { aviary: { test: { echo: { v1: { Echo: EchoClientCtor & { service: grpc.ServiceDefinition } } } } } };
  return loaded.aviary.test.echo.v1;
}

export interface EchoBackend {
  readonly name: string;
  readonly port: number;
  stop(): Promise<void>;
}

export async function startEchoBackend(name: string): Promise<EchoBackend> {
  const server = new grpc.Server();
  server.addService(echoPackage().Echo.service, {
    Echo: (call: grpc.ServerUnaryCall<{ message: string }, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => cb(null, { server: name, message: call.request.message }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { name, port, stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

export function echoClient(target: string): EchoClient {
  return new (echoPackage().Echo)(target, grpc.credentials.createInsecure());
}

export function callEcho(client: EchoClient, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    client.Echo({ message: 'hi' }, { deadline: Date.now() + timeoutMs }, (err, reply) => (err ? reject(err) : resolve(reply!.server)));
  });
}

/** Makes `n` calls, `concurrency` at a time; returns calls per backend name. */
export async function countCalls(client: EchoClient, n: number, concurrency = 50): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let issued = 0;
  async function worker(): Promise<void> {
    while (issued < n) {
      issued++;
      const server = await callEcho(client);
      counts[server] = (counts[server] ?? 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

/** A free loopback port (bound and released). */
export async function freePort(): Promise<number> {
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  server.forceShutdown();
  return port;
}
