import { describe, expect, it } from 'vitest';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import { TypeState } from './connection';

const cla = (name: string) => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } } }] }] });

describe('TypeState.desired', () => {
  const names = ['d', 'b', 'a', 'e', 'c', 'f', 'h', 'g'];
  const snapshot = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: names.map(cla) });

  it('gives the wildcard subscription every resource in name order, a fresh array each time', () => {
    const st = new TypeState(TypeUrl.ClusterLoadAssignment);
    st.wildcard = true;
    const first = st.desired(snapshot);
    expect(first.map((r) => r.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    first.pop();
    expect(st.desired(snapshot).map((r) => r.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
  });

  it('gives a by-name subscription only its names, in name order, whether it covers much of the map or little', () => {
    const many = new TypeState(TypeUrl.ClusterLoadAssignment);
    for (const n of ['g', 'a', 'missing', 'c']) many.names.add(n);
    expect(many.desired(snapshot).map((r) => r.name)).toEqual(['a', 'c', 'g']);
    const few = new TypeState(TypeUrl.ClusterLoadAssignment);
    few.names.add('e');
    expect(few.desired(snapshot).map((r) => r.name)).toEqual(['e']);
  });
});
