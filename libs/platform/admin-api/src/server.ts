import type { AdminApp } from './app';

/** Listens on host:port and returns the bound port (useful when port is 0). */
export async function listenAdmin(app: AdminApp, host: string, port: number): Promise<number> {
  await app.listen({ host, port });
  const address = app.server.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}
