import { describe, expect, it } from 'vitest';
import { TypeUrl, type ResourceTypeUrl } from '@aviary/xds-protos';
import { PushQueue, type Pushable } from './push-queue';

class Stream implements Pushable {
  readonly pushes: Array<{ types: readonly ResourceTypeUrl[] | undefined; observedAt: number | undefined }> = [];
  constructor(
    readonly name: string,
    private readonly log: string[],
  ) {}
  pushChanges(types: readonly ResourceTypeUrl[] | undefined, observedAt: number | undefined): void {
    this.log.push(this.name);
    this.pushes.push({ types: types && [...types].sort(), observedAt });
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('PushQueue', () => {
  it('pushes the first streams at once and the others over the next event-loop turns, in order', async () => {
    const log: string[] = [];
    const q = new PushQueue<Stream>(2);
    const streams = ['a', 'b', 'c', 'd', 'e'].map((n) => new Stream(n, log));
    for (const s of streams) q.add(s, [TypeUrl.ClusterLoadAssignment], 5);
    q.run();
    expect(log).toEqual(['a', 'b']);
    expect(q.size).toBe(3);
    await turn();
    expect(log).toEqual(['a', 'b', 'c', 'd']);
    await turn();
    expect(log).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(q.size).toBe(0);
    expect(streams[4]!.pushes).toEqual([{ types: [TypeUrl.ClusterLoadAssignment], observedAt: 5 }]);
  });

  it('gives a stream queued twice before its turn one push: its first place, the union of the types, the earliest observation', async () => {
    const log: string[] = [];
    const q = new PushQueue<Stream>(1);
    const [a, b, c] = ['a', 'b', 'c'].map((n) => new Stream(n, log));
    q.add(a!, [TypeUrl.Cluster], 9);
    q.add(b!, [TypeUrl.ClusterLoadAssignment], 7);
    q.add(c!, [TypeUrl.Listener], undefined);
    q.add(b!, [TypeUrl.Cluster], 3);
    q.add(c!, undefined, 4);
    q.run();
    await turn();
    await turn();
    expect(log).toEqual(['a', 'b', 'c']);
    expect(b!.pushes).toEqual([{ types: [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment].sort(), observedAt: 3 }]);
    expect(c!.pushes).toEqual([{ types: undefined, observedAt: 4 }]);
  });

  it('drops what is waiting on clear', async () => {
    const log: string[] = [];
    const q = new PushQueue<Stream>(1);
    for (const n of ['a', 'b', 'c']) q.add(new Stream(n, log), undefined, undefined);
    q.run();
    q.clear();
    await turn();
    await turn();
    expect(log).toEqual(['a']);
    expect(q.size).toBe(0);
  });

  it('reports a push that throws and goes on with the other streams', async () => {
    const log: string[] = [];
    const failed: string[] = [];
    const q = new PushQueue<Stream>(2, (err, conn) => failed.push(`${conn.name}: ${(err as Error).message}`));
    const broken = new Stream('b', log);
    broken.pushChanges = () => {
      throw new Error('source failed');
    };
    for (const s of [new Stream('a', log), broken, new Stream('c', log)]) q.add(s, undefined, undefined);
    q.run();
    await turn();
    expect(log).toEqual(['a', 'c']);
    expect(failed).toEqual(['b: source failed']);
    expect(q.size).toBe(0);
  });
});
