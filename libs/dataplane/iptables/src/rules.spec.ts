import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fjp, { type Operation } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '@aviary/config';
import { injectionValues, parseInjectionTemplate, planInjection, type Pod } from '@aviary/injection';
import { captureRules, captureSpec, iptablesConfig, natRules, restoreInput, type CaptureRules } from './index';

const goldenDir = fileURLToPath(new URL('./__golden__/', import.meta.url));
const templateFile = fileURLToPath(new URL('../../../../charts/aviary/charts/injector-webhook/files/injection-template.yaml', import.meta.url));

/** The rules for a command line, as `aviary-iptables` parses it (flags only, no environment). */
function rulesFor(argv: readonly string[]): CaptureRules {
  const result = parseConfig(iptablesConfig, argv, {});
  if (result.kind !== 'config') throw new Error('unexpected --help');
  return captureRules(captureSpec(result.config));
}

function render(rules: CaptureRules): string {
  return `# iptables-restore --noflush\n${rules.ipv4}` + (rules.ipv6 === undefined ? '' : `# ip6tables-restore --noflush\n${rules.ipv6}`);
}

/** Compares with __golden__/<name>.rules; UPDATE_GOLDEN=1 writes it. */
function expectGolden(name: string, text: string): void {
  const file = `${goldenDir}${name}.rules`;
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
  expect(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

/** The init container's args as the injector renders them from the chart's template for a plain pod. */
function templateArgs(annotations: Record<string, string> = {}): string[] {
  const values = injectionValues({ proxyImage: 'aviary/gateway:0.1.0' });
  const template = parseInjectionTemplate(readFileSync(templateFile, 'utf8'), values);
  const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'app', namespace: 'shop', annotations }, spec: { containers: [{ name: 'app', image: 'app:1' }] } } as Pod;
  const plan = planInjection(pod, { name: 'shop', labels: { 'istio-injection': 'enabled' } }, template, values);
  const injected = fjp.applyPatch(structuredClone(pod), structuredClone(plan.patch) as Operation[], true, false).newDocument;
  const init = injected.spec?.initContainers?.find((c) => c.name === 'aviary-init');
  expect(init?.command).toEqual(['aviary-iptables']);
  return (init?.args ?? []) as string[];
}

describe('capture rules (golden iptables-restore input)', () => {
  it("the template's default flags", () => {
    const args = templateArgs();
    expect(args).toEqual([
      '--inbound-capture-port', '15006', '--outbound-capture-port', '15001', '--proxy-uid', '1337', '--proxy-gid', '1337',
      '--include-inbound-ports', '*', '--exclude-inbound-ports', '15090,15021,15020,15000', '--include-outbound-ip-ranges', '*',
      '--exclude-outbound-ip-ranges', '', '--exclude-outbound-ports', '',
    ]);
    const rules = rulesFor(args);
    expect(rules.ipv6).toBeUndefined();
    expectGolden('template-defaults', render(rules));
    // No flag at all gives the same rules.
    expect(rulesFor([])).toEqual(rules);
  });

  it("the template with Istio's traffic annotations", () => {
    const args = templateArgs({
      'traffic.sidecar.istio.io/includeInboundPorts': '8080,9090',
      'traffic.sidecar.istio.io/excludeInboundPorts': '9090',
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8,172.16.0.0/12',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.96.0.1/32',
      'traffic.sidecar.istio.io/excludeOutboundPorts': '5432,6379',
    });
    expectGolden('template-annotations', render(rulesFor(args)));
  });

  it('include-inbound-ports: a list, minus excluded and proxy ports', () => {
    expectGolden('inbound-include', render(rulesFor(['--include-inbound-ports', '80, 8080,15000,9000', '--exclude-inbound-ports', '9000'])));
  });

  it('include-inbound-ports "": no inbound capture (the chain stays empty)', () => {
    const rules = rulesFor(['--include-inbound-ports', '']);
    expect(rules.ipv4).not.toContain('PREROUTING');
    expect(rules.ipv4).not.toContain('-A ISTIO_INBOUND');
    expectGolden('inbound-none', render(rules));
  });

  it('include-inbound-ports left empty by the exclusions: no inbound capture', () => {
    expect(rulesFor(['--include-inbound-ports', '15000,15090,8080', '--exclude-inbound-ports', '8080']).ipv4).not.toContain('PREROUTING');
  });

  it('wildcard inbound with excluded ports, other capture and proxy ids', () => {
    expectGolden(
      'inbound-wildcard-exclude',
      render(rulesFor(['--exclude-inbound-ports', '22,443', '--inbound-capture-port', '16006', '--outbound-capture-port', '16001', '--proxy-uid', '2000', '--proxy-gid', '3000'])),
    );
  });

  it('outbound: include ranges (host bits cleared), exclude ranges and ports', () => {
    expectGolden(
      'outbound-ranges',
      render(rulesFor(['--include-outbound-ip-ranges', '10.1.2.3/8,192.168.0.0/16', '--exclude-outbound-ip-ranges', '10.96.0.0/12,10.96.0.0/12', '--exclude-outbound-ports', '3306'])),
    );
  });

  it('outbound "": loopback and owner rules only, nothing redirected', () => {
    const rules = rulesFor(['--include-outbound-ip-ranges', '']);
    expect(rules.ipv4).not.toContain('-j ISTIO_REDIRECT');
    expect(rules.ipv4).toContain('-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN');
    expectGolden('outbound-none', render(rules));
  });

  it('exclude-outbound-ip-ranges "*": nothing redirected', () => {
    expect(rulesFor(['--exclude-outbound-ip-ranges', '*']).ipv4).not.toContain('-j ISTIO_REDIRECT');
  });

  it('IPv6 ranges add ip6tables rules with ::1 and ::6', () => {
    const rules = rulesFor(['--include-outbound-ip-ranges', '10.0.0.0/8,fd00:0:0::1/8', '--exclude-outbound-ip-ranges', '2001:db8:0:0:1:0:0:1']);
    expect(rules.ipv4).not.toContain('fd00');
    expect(rules.ipv6).toContain('-A ISTIO_OUTPUT -d fd00::/8 -j ISTIO_REDIRECT');
    expect(rules.ipv6).toContain('-A ISTIO_OUTPUT -d 2001:db8::1:0:0:1/128 -j RETURN');
    expect(rules.ipv6).not.toContain('10.0.0.0');
    expectGolden('ipv6', render(rules));
  });

  it('is deterministic', () => {
    expect(render(rulesFor(['--exclude-inbound-ports', '22']))).toBe(render(rulesFor(['--exclude-inbound-ports', '22'])));
  });

  it('leaves out the PREROUTING/OUTPUT jumps that iptables-save already shows (re-runs add none)', () => {
    const result = parseConfig(iptablesConfig, [], {});
    if (result.kind !== 'config') throw new Error('unexpected --help');
    const rules = natRules(captureSpec(result.config), 4);
    const saved = '*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j ISTIO_INBOUND\n-A OUTPUT -p tcp -j ISTIO_OUTPUT\nCOMMIT\n';
    const again = restoreInput(rules, saved);
    expect(again).not.toContain('-A PREROUTING');
    expect(again).not.toContain('-A OUTPUT');
    expect(again).toContain(':ISTIO_OUTPUT - [0:0]');
    expect(again.split('\n').length).toBe(restoreInput(rules).split('\n').length - 2);
  });
});
