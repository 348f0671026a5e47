/**
 * Envoy-style counters and gauges kept in plain maps (the hot path only increments numbers),
 * rendered as Envoy's `/stats` text and as Prometheus exposition for `/stats/prometheus`.
 * Label values are bounded by config (cluster, listener names) and closed enums (code class,
 * response flags): no per-request cardinality.
 */
export class ProxyStats {
  private readonly counters = new Map<string, { name: string; labels: Record<string, string>; value: number }>();
  private readonly gauges = new Map<string, () => { labels: Record<string, string>; value: number }[]>();

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    let key = name;
    for (const k in labels) key += `|${k}=${labels[k]}`;
    const c = this.counters.get(key);
    if (c === undefined) this.counters.set(key, { name, labels, value: by });
    else c.value += by;
  }

  get(name: string, labels: Record<string, string> = {}): number {
    let key = name;
    for (const k in labels) key += `|${k}=${labels[k]}`;
    return this.counters.get(key)?.value ?? 0;
  }

  gauge(name: string, read: () => { labels: Record<string, string>; value: number }[]): void {
    this.gauges.set(name, read);
  }

  /** Envoy's flat text: `cluster.<name>.upstream_rq_total: 12`. */
  text(): string {
    const lines: string[] = [];
    for (const c of this.counters.values()) lines.push(`${flatName(c.name, c.labels)}: ${c.value}`);
    for (const [name, read] of this.gauges) for (const g of read()) lines.push(`${flatName(name, g.labels)}: ${g.value}`);
    return `${lines.sort().join('\n')}\n`;
  }

  prometheus(): string {
    const byName = new Map<string, string[]>();
    const add = (name: string, type: string, line: string): void => {
      const full = `envoy_${name}`;
      let l = byName.get(full);
      if (l === undefined) byName.set(full, (l = [`# TYPE ${full} ${type}`]));
      l.push(line);
    };
    for (const c of this.counters.values()) add(c.name, 'counter', `envoy_${c.name}${labelText(c.labels)} ${c.value}`);
    for (const [name, read] of this.gauges) for (const g of read()) add(name, 'gauge', `envoy_${name}${labelText(g.labels)} ${g.value}`);
    return `${[...byName.keys()]
      .sort()
      .map((k) => (byName.get(k) as string[]).join('\n'))
      .join('\n')}\n`;
  }
}

function flatName(name: string, labels: Record<string, string>): string {
  const scope = labels.envoy_cluster_name ? `cluster.${labels.envoy_cluster_name}.` : labels.envoy_listener ? `listener.${labels.envoy_listener}.` : '';
  const rest = Object.entries(labels)
    .filter(([k]) => k !== 'envoy_cluster_name' && k !== 'envoy_listener')
    .map(([, v]) => v);
  return `${scope}${name.replace(/^(cluster|listener|http)_/, '')}${rest.length > 0 ? `.${rest.join('.')}` : ''}`;
}

function labelText(labels: Record<string, string>): string {
  const e = Object.entries(labels);
  if (e.length === 0) return '';
  return `{${e.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}
