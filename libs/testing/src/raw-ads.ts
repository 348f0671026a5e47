import * as grpc from '@grpc/grpc-js';
import { AdsService } from '@aviary/xds-api';
import { decodeMessageOf, encodeMessageOf, jsToStruct, type CanonicalMessage, type JsonValue } from '@aviary/xds-protos';

/** Tests only: a hand-driven ADS stream (SotW or delta) with the protos encoded by protobufjs. */

export class RawAdsStream {
  private readonly queue: CanonicalMessage[] = [];
  private waiters: ((m: CanonicalMessage) => void)[] = [];
  private readonly stream: grpc.ClientDuplexStream<object, CanonicalMessage>;
  error: grpc.ServiceError | undefined;
  private readonly client: grpc.Client;

  /** `credentials`: e.g. `grpc.credentials.createSsl(...)` for an mTLS port; plaintext by default. */
  constructor(port: number, readonly delta: boolean, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, credentials);
    const rpc = delta ? AdsService.delta : AdsService.sotw;
    this.stream = this.client.makeBidiStreamRequest(
      rpc.path,
      (o: object) => Buffer.from(encodeMessageOf(rpc.request, o)),
      (b: Buffer) => decodeMessageOf(rpc.response, b),
    );
    this.stream.on('data', (m: CanonicalMessage) => {
      const w = this.waiters.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    this.stream.on('error', (e: grpc.ServiceError) => {
      this.error = e;
    });
  }

  static node(id: string, metadata: Record<string, JsonValue> = {}): object {
    return { id, cluster: 'test', metadata: jsToStruct(metadata), locality: { zone: 'z1' } };
  }

  send(request: object): void {
    this.stream.write(request);
  }

  /** The next response (fails the test after `timeoutMs`). */
  next(timeoutMs = 3000): Promise<CanonicalMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response within ${timeoutMs} ms${this.error ? `: ${this.error.message}` : ''}`)), timeoutMs);
      this.waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  /** Responses already received and not yet taken. */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves when the stream ends with an error status. */
  closedWith(): Promise<grpc.ServiceError> {
    if (this.error) return Promise.resolve(this.error);
    return new Promise((resolve) => this.stream.on('error', resolve));
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}
