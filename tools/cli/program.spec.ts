import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '@aviary/config';
import { cliConfig } from './config';
import { buildProgram, runCli, runCommand } from './program';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l) }, out, err };
}

const defaults = (() => {
  const r = parseConfig(cliConfig, [], {});
  if (r.kind !== 'config') throw new Error('config');
  return r.config;
})();

describe('aviary help', () => {
  it('prints the command list and exit codes for a bare `aviary`, exit 0', async () => {
    const c = capture();
    expect(await runCommand([], defaults, c.io)).toBe(0);
    const text = c.out.join('\n');
    for (const command of ['status', 'apply', 'get', 'delete', 'validate', 'analyze', 'proxies', 'token', 'inject', 'completion']) expect(text).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    expect(text).toContain('Exit codes:');
    expect(text).toMatch(/^ {2}2 {2}usage error/m);
    expect(text).toContain('AVIARY_PILOT_URL');
  });

  it('gives each subcommand its own help with its options, the global options and exit codes', async () => {
    const c = capture();
    expect(await runCommand(['apply', '--help'], defaults, c.io)).toBe(0);
    const text = c.out.join('\n');
    expect(text).toContain('Usage: aviary apply [options]');
    expect(text).toMatch(/-f, --file <file>\s+manifest file, - for standard input \(required\)/);
    expect(text).toContain('--dry-run');
    expect(text).toContain('-n, --namespace <namespace>');
    expect(text).toContain('Global Options:');
    expect(text).toContain('--timeout-ms <ms>');
    expect(text).toContain('Exit codes:');
    const h = capture();
    expect(await runCommand(['help', 'get'], defaults, h.io)).toBe(0);
    expect(h.out.join('\n')).toContain('Usage: aviary get [options] <kind> [name]');
    expect(h.out.join('\n')).toContain('(choices: "yaml", "json")');
  });
});

describe('aviary usage errors exit 2 and name the culprit', () => {
  it.each([
    [['get', 'vs', '-o', 'xml'], "option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are yaml, json."],
    [['token', '-n', 'default', '--service-account', 'reviews', '--ttl', 'soon'], "option '--ttl <seconds>' argument 'soon' is invalid. must be a whole number of seconds between 1 and 2592000."],
    [['token', '-n', 'default', '--service-account', 'reviews', '--ttl', '2592001'], "option '--ttl <seconds>'"],
    [['token', '-n', 'default'], "required option '--service-account <name>' not specified"],
    [['validate', '-f', 'x.yaml', '--bogus'], "unknown option '--bogus'"],
    [['validate'], "required option '-f, --file <file>' not specified"],
    [['get'], "missing required argument 'kind'"],
    [['delete', 'vs'], "missing required argument 'name'"],
    [['get', 'vs', 'a', 'b'], 'too many arguments'],
    [['--timeout-ms', 'soon', 'status'], '--timeout-ms: must be an integer between 100 and 600000 (got "soon")'],
    [['status', '--pilot-url', 'ftp://x'], '--pilot-url: must match pattern'],
  ])('%j', async (argv, message) => {
    const c = capture();
    expect(await runCommand(argv, defaults, c.io)).toBe(2);
    expect(c.err[0]).toContain(`error: ${message}`);
    expect(c.out).toEqual([]);
  });

  it('validates AVIARY_* variables with the same schema, and a flag overrides a bad one', async () => {
    const fromEnv = (flags: readonly string[]) => {
      const r = parseConfig(cliConfig, flags, { AVIARY_TIMEOUT_MS: '5' });
      if (r.kind !== 'config') throw new Error('config');
      return r.config;
    };
    const c = capture();
    expect(await runCli(['status'], c.io, fromEnv)).toBe(2);
    expect(c.err[0]).toBe('error: AVIARY_TIMEOUT_MS: must be an integer between 100 and 600000 (got "5")');
    const dir = mkdtempSync(join(tmpdir(), 'aviary-cli-'));
    writeFileSync(join(dir, 'empty.yaml'), '');
    const ok = capture();
    expect(await runCli(['validate', '--timeout-ms', '200', '-f', join(dir, 'empty.yaml')], ok.io, fromEnv)).toBe(0);
    expect(ok.out).toEqual(['0 document(s) valid']);
  });

  it('passes global options given anywhere on the line to the command', async () => {
    let seen: readonly string[] = [];
    const c = capture();
    const code = await runCli(['validate', '-f', '/nonexistent.yaml', '--pilot-url', 'http://127.0.0.1:9'], c.io, (flags) => {
      seen = flags;
      return defaults;
    }).catch((err: Error) => err.message);
    expect(code).toBe('/nonexistent.yaml: no such file');
    expect(seen).toEqual(['--pilot-url', 'http://127.0.0.1:9']);
  });
});

describe('aviary completion', () => {
  const script = (() => {
    const c = capture();
    return runCommand(['completion'], defaults, c.io).then((code) => ({ code, text: c.out.join('\n') }));
  })();
  const complete = async (words: string[], cwd = process.cwd()): Promise<string[]> => {
    const { text } = await script;
    const program = `${text}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _aviary_completion; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', program], { cwd, encoding: 'utf8', timeout: 10_000 });
    expect(r.stderr).toBe('');
    return r.stdout.split('\n').filter((l) => l !== '');
  };

  it('covers every command of the tree, with its options', async () => {
    const { code, text } = await script;
    expect(code).toBe(0);
    const program = buildProgram(capture().io, () => defaults, () => undefined);
    expect(program.commands.length).toBeGreaterThanOrEqual(10);
    const top = await complete(['aviary', '']);
    for (const command of program.commands) {
      expect(top).toContain(command.name());
      expect(text).toContain(`    ${command.name()})`);
      const offered = await complete(['aviary', command.name(), '-']);
      for (const option of command.options) expect(offered).toContain(option.long);
      expect(offered).toContain('--pilot-url');
    }
    expect(top).toContain('help');
  });

  it('completes choices, file names and the command after global options', async () => {
    expect(await complete(['aviary', 'get', 'vs', '-o', ''])).toEqual(['yaml', 'json']);
    expect(await complete(['aviary', '--pilot-url', 'http://127.0.0.1:1', 'ap'])).toEqual(['apply']);
    expect(await complete(['aviary', 'apply', '--d'])).toEqual(['--dry-run']);
    expect(await complete(['aviary', 'token', '--ttl', ''])).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'aviary-cli-'));
    writeFileSync(join(dir, 'reviews.yaml'), '');
    expect(await complete(['aviary', 'validate', '-f', 'rev'], dir)).toEqual(['reviews.yaml']);
  });
});
