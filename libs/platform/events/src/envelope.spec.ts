import { describe, expect, it } from 'vitest';
import { createEnvelope, decodeEvent, encodeEvent, MAX_EVENT_BYTES } from './envelope';
import { Subjects } from './subjects';

const changed = { op: 'created', kind: 'VirtualService', namespace: 'default', name: 'reviews', revision: 3 } as const;

describe('event envelope', () => {
  it('round-trips a valid event with id, source, type and time', () => {
    const event = createEnvelope(Subjects.configChanged, 'pilot', changed, new Date('2026-01-02T03:04:05Z'));
    const decoded = decodeEvent(Subjects.configChanged, encodeEvent(event));
    expect(decoded).toEqual({ id: event.id, source: 'pilot', type: 'aviary.config.v1.changed', time: '2026-01-02T03:04:05.000Z', data: changed });
  });

  it('refuses to encode data that breaks the subject schema', () => {
    // @ts-expect-error an op outside the schema, on purpose: the encoder must refuse it at run time
    const bad = createEnvelope(Subjects.configChanged, 'pilot', { ...changed, op: 'renamed' });
    expect(() => encodeEvent(bad)).toThrow('aviary.config.v1.changed: data/op');
  });

  it('refuses oversized events', () => {
    const big = createEnvelope(Subjects.xdsStatus, 'pilot', { proxyId: 'p', event: 'nack', error: 'x'.repeat(16_000) });
    expect(encodeEvent(big).byteLength).toBeLessThan(MAX_EVENT_BYTES);
    const huge = createEnvelope(Subjects.telemetryRequests, 'gw', { proxyId: 'p', records: Array.from({ length: 10_000 }, () => 'y'.repeat(200)) });
    expect(() => encodeEvent(huge)).toThrow(/exceeds/);
  });

  it.each([
    ['not JSON', Buffer.from('{nope'), 'payload is not JSON'],
    ['a missing id', Buffer.from(JSON.stringify({ source: 's', type: Subjects.configChanged, time: new Date().toISOString(), data: changed })), 'envelope'],
    ['a wrong type', Buffer.from(JSON.stringify({ id: '1', source: 's', type: Subjects.caBundle, time: new Date().toISOString(), data: changed })), 'does not match the subject'],
    ['bad data', Buffer.from(JSON.stringify({ id: '1', source: 's', type: Subjects.configChanged, time: new Date().toISOString(), data: { ...changed, revision: -1 } })), 'data/revision'],
  ])('rejects %s on receipt with a reason', (_name, bytes, reason) => {
    expect(() => decodeEvent(Subjects.configChanged, bytes)).toThrow(reason);
  });
});
