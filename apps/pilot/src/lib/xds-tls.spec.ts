import { describe, expect, it } from 'vitest';
import { assertXdsListeners } from './xds-tls';

describe('assertXdsListeners', () => {
  it('keeps the plaintext port on loopback and needs at least one listener', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(() => assertXdsListeners({ xdsPlaintext: true, xdsTls: false, xdsHost: host })).not.toThrow();
    for (const host of ['0.0.0.0', '10.0.0.5', '::', 'pilot.example.org']) {
      expect(() => assertXdsListeners({ xdsPlaintext: true, xdsTls: true, xdsHost: host })).toThrow(/xdsHost: the plaintext xDS port is for loopback development only/);
    }
    expect(() => assertXdsListeners({ xdsPlaintext: false, xdsTls: true, xdsHost: '0.0.0.0' })).not.toThrow();
    expect(() => assertXdsListeners({ xdsPlaintext: false, xdsTls: false, xdsHost: '127.0.0.1' })).toThrow(/both false/);
  });
});
