import { describe, expect, it } from 'vitest';
import { caBundlePatch } from './webhook-ca';

describe('caBundlePatch', () => {
  const config = {
    metadata: { name: 'w', resourceVersion: '17' },
    webhooks: [
      { name: 'a', clientConfig: { url: 'https://127.0.0.1:9443/inject' }, admissionReviewVersions: ['v1'], sideEffects: 'None' },
      { name: 'b', clientConfig: { url: 'https://127.0.0.1:9443/inject', caBundle: 'T0xE' }, admissionReviewVersions: ['v1'], sideEffects: 'None' },
    ],
  };
  it('adds or replaces caBundle on every webhook, guarded by the resourceVersion', () => {
    expect(caBundlePatch(config, 'TkVX')).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '17' },
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: 'TkVX' },
      { op: 'replace', path: '/webhooks/1/clientConfig/caBundle', value: 'TkVX' },
    ]);
  });
  it('is empty when every webhook already has it', () => {
    expect(caBundlePatch({ ...config, webhooks: config.webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: 'TkVX' } })) }, 'TkVX')).toEqual([]);
  });
});
