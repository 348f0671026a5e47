import type { Msg } from './envoy';

/** One generated resource: its xDS name and the message in canonical form. */
export interface NamedResource {
  readonly name: string;
  readonly resource: Msg;
}

/** Mutable accumulator used by the generators. */
export interface Generated {
  listeners: NamedResource[];
  routes: NamedResource[];
  clusters: NamedResource[];
  endpoints: NamedResource[];
}
