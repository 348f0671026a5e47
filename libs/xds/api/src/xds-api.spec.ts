import { describe, expect, it } from 'vitest';
import { AdsService, AlsService, ExtensionTypeUrl, SdsService, TYPE_URL_PREFIX, TypeUrl, isResourceTypeUrl, resourceTypeUrls, shortTypeName, typeNameOf, typeUrlOf } from './index';

describe("Envoy's xDS contract", () => {
  it('names the five resource types by their v3 type URLs, each with a short name', () => {
    expect(resourceTypeUrls).toEqual(Object.values(TypeUrl));
    expect(resourceTypeUrls.map((t) => shortTypeName[t])).toEqual(['lds', 'rds', 'cds', 'eds', 'sds']);
    for (const url of [...resourceTypeUrls, ...Object.values(ExtensionTypeUrl)]) {
      expect(url.startsWith(TYPE_URL_PREFIX)).toBe(true);
      expect(typeUrlOf(typeNameOf(url))).toBe(url);
      expect(typeNameOf(url)).toMatch(/^envoy\.[a-z_.0-9]+\.v3\.[A-Z][A-Za-z]+$/);
    }
    expect(isResourceTypeUrl(TypeUrl.Cluster)).toBe(true);
    expect(isResourceTypeUrl(typeUrlOf('envoy.api.v2.Cluster'))).toBe(false);
  });

  it('gives each RPC its gRPC path under its service', () => {
    expect(AdsService.sotw.path).toBe('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
    expect(AdsService.delta.path).toBe('/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources');
    expect(SdsService.sotw.path).toBe('/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets');
    expect(AlsService.stream.path).toBe('/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs');
    for (const service of [AdsService, SdsService, AlsService]) {
      for (const [key, method] of Object.entries(service)) {
        if (key === 'name') continue;
        expect(typeof method === 'object' && method.path).toBe(`/${service.name}/${(method as { name: string }).name}`);
      }
    }
  });
});
