import Type, { type Static } from 'typebox';
import { Closed, opt, Resource } from '../common';
import { referenceGrantVersions } from './common';

/** Lets objects of the listed kinds in the `from` namespaces refer to objects in this namespace. */
export const ReferenceGrantSpec = Closed({
  from: Type.Array(Closed({ group: Type.String(), kind: Type.String(), namespace: Type.String() })),
  to: Type.Array(Closed({ group: Type.String(), kind: Type.String(), name: opt(Type.String()) })),
});
export type ReferenceGrantSpec = Static<typeof ReferenceGrantSpec>;

export const ReferenceGrantSchema = Resource('ReferenceGrant', referenceGrantVersions, ReferenceGrantSpec, 'Cross-namespace references a namespace allows (gateway.networking.k8s.io ReferenceGrant).');
export type ReferenceGrant = Static<typeof ReferenceGrantSchema>;
