import { type ObjectMeta } from '@aviary/mesh-api';
import { type Report } from '../finding';
import { checkLabels, isDns1123Label, isDns1123Subdomain } from './checks';

/** Kubernetes object metadata rules: name is a DNS-1123 subdomain, namespace a DNS-1123 label. */
export function validateMetadata(m: ObjectMeta, r: Report, namespaced = true): void {
  if (m.name === '') r.error('metadata.name', 'name is required');
  else if (!isDns1123Subdomain(m.name)) {
    r.error('metadata.name', `invalid name ${JSON.stringify(m.name)}: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.'; start and end alphanumeric)`);
  }
  if (!namespaced && m.namespace !== undefined && m.namespace !== '') r.error('metadata.namespace', 'the kind is cluster-scoped: metadata.namespace must not be set');
  else if (m.namespace !== undefined && !isDns1123Label(m.namespace)) r.error('metadata.namespace', `invalid namespace ${JSON.stringify(m.namespace)}: must be a DNS-1123 label`);
  checkLabels(r, 'metadata.labels', m.labels);
  checkLabels(r, 'metadata.annotations', m.annotations, 'annotation');
}
