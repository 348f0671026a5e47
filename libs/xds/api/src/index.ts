export { TYPE_URL_PREFIX, TypeUrl, ExtensionTypeUrl, resourceTypeUrls, shortTypeName, isResourceTypeUrl, typeUrlOf, typeNameOf } from './type-urls';
export type { ResourceTypeUrl } from './type-urls';
export { MessageName, AdsService, SdsService, AlsService } from './services';
export type { RpcMethod } from './services';
