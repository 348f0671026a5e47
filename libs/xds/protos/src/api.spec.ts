import { describe, expect, it } from 'vitest';
import { AdsService, AlsService, ExtensionTypeUrl, MessageName, SdsService, TypeUrl, typeNameOf } from '@aviary/xds-api';
import { loadXdsRoot, lookupType } from './index';

describe("@aviary/xds-api against Envoy's protos", () => {
  it('every type URL names a message the default root loads', () => {
    for (const url of [...Object.values(TypeUrl), ...Object.values(ExtensionTypeUrl)]) {
      if (url === ExtensionTypeUrl.ExtAuthz) continue; // named only to be refused: not in the default set
      expect(lookupType(typeNameOf(url)).fullName).toBe(`.${typeNameOf(url)}`);
    }
  });

  it('every service method exists with the request and response messages named', () => {
    const root = loadXdsRoot({ extraFiles: ['envoy/service/secret/v3/sds.proto', 'envoy/service/accesslog/v3/als.proto'] });
    for (const service of [AdsService, SdsService, AlsService]) {
      const def = root.lookupService(service.name);
      for (const [key, method] of Object.entries(service)) {
        if (key === 'name' || typeof method !== 'object') continue;
        const m = def.methods[method.name];
        expect(m, `${service.name}/${method.name}`).toBeDefined();
        m!.resolve();
        expect(m!.resolvedRequestType!.fullName).toBe(`.${method.request}`);
        expect(m!.resolvedResponseType!.fullName).toBe(`.${method.response}`);
      }
    }
    for (const name of Object.values(MessageName)) expect(root.lookupType(name).fullName).toBe(`.${name}`);
  });
});
