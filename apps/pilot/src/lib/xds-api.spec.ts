import { describe, expect, it } from 'vitest';
import { syncStatus } from './xds-api';

describe('syncz status', () => {
  it('is NOT SENT while nothing was sent, even when no ACK is recorded either', () => {
    expect(syncStatus({})).toBe('NOT SENT');
  });

  it('is STALE when sent and not ACKed, SYNCED once the sent version is ACKed', () => {
    expect(syncStatus({ sentVersion: '3' })).toBe('STALE');
    expect(syncStatus({ sentVersion: '3', ackedVersion: '2' })).toBe('STALE');
    expect(syncStatus({ sentVersion: '3', ackedVersion: '3' })).toBe('SYNCED');
  });

  it('is NACKED when the last sent version was rejected', () => {
    const lastNack = { version: '3', nonce: 'n', error: 'bad', at: 0 };
    expect(syncStatus({ sentVersion: '3', ackedVersion: '2', lastNack })).toBe('NACKED');
    expect(syncStatus({ sentVersion: '4', ackedVersion: '2', lastNack })).toBe('STALE');
  });
});
