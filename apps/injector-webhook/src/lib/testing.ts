import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { injectionValues, parseInjectionTemplate, type InjectionValues } from '@aviary/injection';
import { createLogger } from '@aviary/observability';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { Injector } from './injector';
import { injectorMetrics } from './metrics';
import { resolveTemplateFile } from './template-file';

/** Test helpers shared by this app's specs (not part of the app). */
export function testInjector(overrides: Partial<InjectionValues> = {}) {
  const values = injectionValues({ proxyImage: 'aviary/gateway:test', ...overrides });
  const template = parseInjectionTemplate(readFileSync(resolveTemplateFile('', fileURLToPath(new URL('.', import.meta.url))), 'utf8'), values);
  const registry = new Registry();
  const metrics = injectorMetrics(registry);
  const logger = createLogger('injector-webhook-test', 'silent');
  return { injector: new Injector(template, values, metrics, logger), metrics, registry, logger };
}

/** A throwaway CA and a serving certificate for 127.0.0.1/localhost. */
export function testCertificate(dnsNames: string[] = ['localhost', '127.0.0.1']) {
  const ca = Issuer.createRoot({ trustDomain: 'test.local' });
  const key = generatePrivateKey('ecdsa-p256');
  const issued = ca.signServing(createCsr(key, { dnsNames }), dnsNames, 3600);
  return { ca, caPem: ca.rootPem, certPem: issued.certPem, keyPem: privateKeyToPem(key) };
}
