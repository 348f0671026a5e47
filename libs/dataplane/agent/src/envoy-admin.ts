import { request } from 'undici';

/**
 * A client of Envoy's admin API on 127.0.0.1 (the agent's own Envoy): readiness, drain, quit,
 * and the read-only endpoints the agent's admin passes through to users.
 */
export class EnvoyAdmin {
  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async get(path: string, timeoutMs = 5_000): Promise<{ status: number; contentType: string; body: string }> {
    const res = await request(`${this.url}${path}`, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const ct = res.headers['content-type'];
    return { status: res.statusCode, contentType: typeof ct === 'string' ? ct : 'text/plain', body: await res.body.text() };
  }

  async post(path: string, timeoutMs = 5_000): Promise<number> {
    const res = await request(`${this.url}${path}`, { method: 'POST', headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await res.body.dump();
    return res.statusCode;
  }

  /** Envoy's server state (`/ready`: LIVE, PRE_INITIALIZING, INITIALIZING, DRAINING), or undefined when it does not answer. */
  async state(): Promise<string | undefined> {
    try {
      return (await this.get('/ready', 1_000)).body.trim();
    } catch {
      return undefined;
    }
  }

  /**
   * Istio's readiness check (pilot-agent `readiness.go`): CDS and LDS each received at least once
   * (update_success or update_rejected counted); plus whether the ADS stream to pilot is up
   * (`control_plane.connected_state`). Undefined when Envoy does not answer.
   */
  async xdsState(): Promise<{ readonly configReceived: boolean; readonly connected: boolean } | undefined> {
    try {
      const filter = '^((cluster_manager\\.cds|listener_manager\\.lds)\\.(update_success|update_rejected)|control_plane\\.connected_state)$';
      const { status, body } = await this.get(`/stats?filter=${encodeURIComponent(filter)}`, 1_000);
      if (status !== 200) return undefined;
      const counts = new Map<string, number>();
      for (const line of body.split('\n')) {
        const m = /^(cluster_manager\.cds|listener_manager\.lds|control_plane)\.\w+: (\d+)$/.exec(line.trim());
        if (m !== null) counts.set(m[1] as string, (counts.get(m[1] as string) ?? 0) + Number(m[2]));
      }
      return { configReceived: (counts.get('cluster_manager.cds') ?? 0) > 0 && (counts.get('listener_manager.lds') ?? 0) > 0, connected: (counts.get('control_plane') ?? 0) > 0 };
    } catch {
      return undefined;
    }
  }
}
