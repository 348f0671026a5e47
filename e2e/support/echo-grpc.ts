import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const definition = loadSync(join(import.meta.dirname, '..', '..', 'libs', 'xds', 'server', 'test', 'echo.proto'), { keepCase: true });
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  aviary: { test: { echo: { v1: { Echo: grpc.ServiceClientConstructor & { service: grpc.ServiceDefinition } } } } };
};
export const EchoService = pkg.aviary.test.echo.v1.Echo;

export interface EchoServer {
  readonly name: string;
  readonly port: number;
  calls: number;
  stop(): Promise<void>;
}

/** A real gRPC server on 127.0.0.1 that answers every Echo call with its own name. */
export async function startEchoServer(name: string, port = 0): Promise<EchoServer> {
  const server = new grpc.Server();
  const state = { calls: 0 };
  server.addService(EchoService.service, {
    Echo: (call: grpc.ServerUnaryCall<{ message: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      state.calls++;
      cb(null, { server: name, message: call.request.message });
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    name,
    port: bound,
    get calls() {
      return state.calls;
    },
    set calls(v: number) {
      state.calls = v;
    },
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

export type EchoClient = grpc.Client & {
  Echo(req: { message: string }, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { server: string }) => void): void;
};

export function echoClient(target: string): EchoClient {
  return new EchoService(target, grpc.credentials.createInsecure()) as unknown as EchoClient;
}

/** One call; resolves with the answering server's name or the gRPC error. */
export function echo(client: EchoClient, headers: Record<string, string> = {}, timeoutMs = 5_000): Promise<{ server?: string; error?: grpc.ServiceError }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve) =>
    client.Echo({ message: 'hi' }, md, { deadline: Date.now() + timeoutMs }, (err, res) => resolve(err ? { error: err } : { server: res?.server ?? '' })),
  );
}

export async function tally(client: EchoClient, n: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => echo(client, headers)));
    for (const r of batch) {
      const key = r.server ?? `error:${r.error?.code}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return counts;
}
