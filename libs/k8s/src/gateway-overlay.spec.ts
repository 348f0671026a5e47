import { describe, expect, it } from 'vitest';
import { mergeOverlay, parseOverlays } from './gateway-overlay';

const where = 'ConfigMap web/params';

describe('parseOverlays', () => {
  it('reads one YAML fragment per object and nothing else', () => {
    expect(parseOverlays({ deployment: 'spec: { replicas: 2 }', service: '', serviceAccount: 'metadata: { annotations: { a: b } }' }, where)).toEqual({
      deployment: { spec: { replicas: 2 } },
      serviceAccount: { metadata: { annotations: { a: 'b' } } },
    });
    expect(parseOverlays(undefined, where)).toEqual({});
  });

  it.each([
    [{ hpa: 'spec: {}' }, 'ConfigMap web/params data.hpa: not one of deployment, service, serviceAccount'],
    [{ deployment: 'spec: [' }, 'ConfigMap web/params data.deployment: not YAML'],
    [{ deployment: '- a' }, 'data.deployment: must be a YAML mapping (a fragment of the Deployment)'],
    [{ deployment: 'kind: Service' }, 'data.deployment: kind must be Deployment'],
    [{ deployment: 'status: {}' }, 'data.deployment: status: only metadata and spec can be overlaid'],
    [{ deployment: 'spec: { selector: { matchLabels: { a: b } } }' }, 'data.deployment: spec.selector cannot be changed'],
    [{ service: 'metadata: { name: other }' }, 'data.service: metadata.name cannot be changed'],
    [{ service: 'spec: { selector: { app: x } }' }, 'data.service: spec.selector cannot be changed'],
    [{ deployment: 'spec: { template: { spec: { containers: [{ name: gateway, $patch: delete }] } } }' }, 'data.deployment: spec.template.spec.containers[0].$patch: patch directives'],
    [{ deployment: 'spec: { replicas: 1, replicas: 2 }' }, 'data.deployment: not YAML'],
    [{ deployment: `a: &a [${'x,'.repeat(10)}x]\nb: [${'*a,'.repeat(200)}*a]` }, 'data.deployment: not YAML'],
  ])('refuses %j', (data, message) => {
    expect(() => parseOverlays(data, where)).toThrow(message);
  });
});

describe('mergeOverlay', () => {
  const base = {
    metadata: { name: 'gw', labels: { a: '1', b: '2' } },
    spec: {
      replicas: 1,
      template: {
        spec: {
          containers: [
            { name: 'router', image: 'r:1', env: [{ name: 'X', value: '1' }], ports: [{ containerPort: 8080, name: 'http' }] },
            { name: 'helper', image: 'h:1' },
          ],
          tolerations: [{ key: 'a', operator: 'Exists' }],
        },
      },
      ports: [{ port: 80, targetPort: 8080 }],
    },
  };

  it('merges maps, deletes keys set to null, merges keyed lists by their key and replaces other lists', () => {
    const out = mergeOverlay(base, {
      metadata: { labels: { b: null, c: '3' } },
      spec: {
        replicas: 4,
        template: {
          spec: {
            containers: [{ name: 'router', env: [{ name: 'X', value: '2' }, { name: 'Y', value: 'y' }], ports: [{ containerPort: 8080, protocol: 'TCP' }] }, { name: 'extra', image: 'e:1' }],
            tolerations: [{ key: 'b', operator: 'Exists' }],
          },
        },
        ports: [{ port: 80, nodePort: 30080 }],
      },
    });
    expect(out.metadata).toEqual({ name: 'gw', labels: { a: '1', c: '3' } });
    expect(out.spec.replicas).toBe(4);
    expect(out.spec.template.spec.containers).toEqual([
      { name: 'router', image: 'r:1', env: [{ name: 'X', value: '2' }, { name: 'Y', value: 'y' }], ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }] },
      { name: 'helper', image: 'h:1' },
      { name: 'extra', image: 'e:1' },
    ]);
    expect(out.spec.template.spec.tolerations).toEqual([{ key: 'b', operator: 'Exists' }]);
    expect(out.spec.ports).toEqual([{ port: 80, targetPort: 8080, nodePort: 30080 }]);
    // The base is not changed.
    expect(base.spec.replicas).toBe(1);
    expect(base.metadata.labels).toEqual({ a: '1', b: '2' });
  });
});
