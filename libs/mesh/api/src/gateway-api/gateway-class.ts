import Type, { type Static } from 'typebox';
import { Closed, opt, Resource } from '../common';
import { gatewayApiVersions } from './common';

/** GatewayClass (cluster-scoped): which controller implements the Gateways of this class. */
export const GatewayClassSpec = Closed({
  controllerName: Type.String(),
  parametersRef: opt(Closed({ group: Type.String(), kind: Type.String(), name: Type.String(), namespace: opt(Type.String()) })),
  description: opt(Type.String()),
});
export type GatewayClassSpec = Static<typeof GatewayClassSpec>;

export const GatewayClassSchema = Resource('GatewayClass', gatewayApiVersions, GatewayClassSpec, 'A class of Gateways and the controller that implements it (gateway.networking.k8s.io GatewayClass).');
export type GatewayClass = Static<typeof GatewayClassSchema>;
