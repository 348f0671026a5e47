// The bundled NATS's users and permissions are generated from @aviary/events (permissions.ts):
// charts/aviary/charts/nats/files/authorization.conf is this spec's golden (UPDATE_GOLDEN=1
// rewrites it), so the chart and the code cannot drift apart.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { busRoles, natsAuthorizationConfig } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';

const root = join(import.meta.dirname, '../..');
const natsChart = join(root, 'charts/aviary/charts/nats');

/** The environment variable the chart's nats-server reads a role's password from. */
const passwordVar = (role: string): string => `$AVIARY_NATS_${role.toUpperCase().replaceAll('-', '_')}_PASSWORD`;

describe("the chart's NATS authorization", () => {
  it('is generated from the bus permissions (files/authorization.conf)', () => {
    const text = `# Generated from @aviary/events permissions.ts by tools/nats/authorization.spec.ts (UPDATE_GOLDEN=1); do not edit.\n${natsAuthorizationConfig(busRoles.map((role) => ({ user: role, password: passwordVar(role), role })))}`;
    const file = join(natsChart, 'files/authorization.conf');
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('generates passwords nats-server reads as strings (a letter first)', () => {
    const secret = readFileSync(join(natsChart, 'templates/users-secret.yaml'), 'utf8');
    expect(secret).toContain('(printf "%s%s" (randAlpha 1) (randAlphaNum 31) | b64enc)');
  });

  it('has a Secret key and a nats-server variable for every bus role', () => {
    const helpers = readFileSync(join(natsChart, 'templates/_helpers.tpl'), 'utf8');
    const roles = /define "nats.roles" -}}\n(.*)\n/.exec(helpers)?.[1]?.split(' ');
    expect(roles).toEqual([...busRoles]);
  });
});

describe("nats-server with the chart's authorization", () => {
  it('reads each password from its variable and enforces the permissions', async () => {
    // Shaped like the chart's generated passwords (a letter, then letters and digits): nats-server
    // parses a variable's value as config, so a leading digit would make it a number.
    const pw = (role: string): string => `p7${role.replaceAll('-', '')}9x`;
    for (const role of busRoles) process.env[passwordVar(role).slice(1)] = pw(role);
    const nats = await NatsServer.start({ config: readFileSync(join(natsChart, 'files/authorization.conf'), 'utf8') });
    try {
      const nc = await connect({ servers: nats.url, user: 'gateway', pass: pw('gateway') });
      await nc.close();
      await expect(connect({ servers: nats.url, user: 'gateway', pass: pw('pilot'), reconnect: false })).rejects.toThrow(/authorization/i);
    } finally {
      await nats.stop();
      for (const role of busRoles) delete process.env[passwordVar(role).slice(1)];
    }
  });
});
