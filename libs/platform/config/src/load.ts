import { Value } from 'typebox/value';
import type { TSchema } from 'typebox';
import { AviaryError } from '@aviary/errors';
import { envName, flagName, type AppConfigSpec, type ConfigOf, type OptionSpec } from './spec';

export type ConfigResult<S extends AppConfigSpec> =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'config'; readonly config: ConfigOf<S> };

interface RawValue {
  readonly raw: string | boolean;
  readonly source: string;
}

/**
 * Reads a config from flags (which win) and environment variables, validates every option
 * against its schema and returns a frozen object. Throws `AviaryError` with code
 * `CONFIG_INVALID` and a one-line message naming the variable or flag at fault.
 */
export function parseConfig<S extends AppConfigSpec>(
  spec: S,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ConfigResult<S> {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help', text: renderHelp(spec) };
  const flags = parseFlags(spec, argv);
  const config: Record<string, unknown> = {};
  for (const [key, opt] of Object.entries(spec.options)) {
    const name = envName(key, opt);
    const fromFlag = flags.get(key);
    const fromEnv = env[name];
    const raw: RawValue | undefined =
      fromFlag ?? (fromEnv !== undefined && fromEnv !== '' ? { raw: fromEnv, source: name } : undefined);
    config[key] = raw === undefined ? opt.default : coerce(opt, raw);
  }
  return { kind: 'config', config: Object.freeze(config) as ConfigOf<S> };
}

function parseFlags(spec: AppConfigSpec, argv: readonly string[]): Map<string, RawValue> {
  const byFlag = new Map(Object.keys(spec.options).map((key) => [flagName(key), key] as const));
  const out = new Map<string, RawValue>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) {
      throw invalid(`unexpected argument "${arg}" (options are --name value or --name=value; see --help)`);
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const key = byFlag.get(flag);
    if (key === undefined) throw invalid(`unknown flag ${flag} (see --help)`);
    const opt = spec.options[key] as OptionSpec;
    let raw: string | boolean;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else if (schemaType(opt.schema) === 'boolean' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) raw = true;
    else {
      const next = argv[i + 1];
      if (next === undefined) throw invalid(`flag ${flag} needs a value`);
      raw = next;
      i++;
    }
    out.set(key, { raw, source: flag });
  }
  return out;
}

function coerce(opt: OptionSpec, { raw, source }: RawValue): unknown {
  let value: unknown = raw;
  if (typeof raw === 'string') {
    switch (schemaType(opt.schema)) {
      case 'integer':
      case 'number':
        value = raw.trim() === '' || Number.isNaN(Number(raw)) ? raw : Number(raw);
        break;
      case 'boolean':
        value = /^(true|1|yes)$/i.test(raw) ? true : /^(false|0|no)$/i.test(raw) ? false : raw;
        break;
      default:
        break;
    }
  }
  const errors = Value.Errors(opt.schema, value);
  const first = errors[0];
  if (first !== undefined) {
    const shown = opt.secret ? '' : ` (got ${JSON.stringify(raw)})`;
    throw invalid(`${source}: ${describe(opt.schema, first.message)}${shown}`);
  }
  return value;
}

function describe(schema: TSchema, fallback: string): string {
  const s = schema as Record<string, unknown>;
  const anyOf = s['anyOf'] as Array<Record<string, unknown>> | undefined;
  if (anyOf !== undefined && anyOf.every((m) => 'const' in m)) {
    return `must be one of ${anyOf.map((m) => JSON.stringify(m['const'])).join(', ')}`;
  }
  const type = schemaType(schema);
  if (type === 'integer' || type === 'number') {
    const range = s['minimum'] !== undefined && s['maximum'] !== undefined ? ` between ${s['minimum']} and ${s['maximum']}` : '';
    return `must be ${type === 'integer' ? 'an integer' : 'a number'}${range}`;
  }
  if (type === 'boolean') return 'must be true or false';
  if (typeof s['description'] === 'string' && s['pattern'] !== undefined) return `must be ${s['description']}`;
  return fallback;
}

function schemaType(schema: TSchema): string | undefined {
  const t = (schema as { type?: unknown }).type;
  return typeof t === 'string' ? t : undefined;
}

function invalid(message: string): AviaryError {
  return new AviaryError('INVALID_ARGUMENT', 'CONFIG_INVALID', message);
}

/** `--help` text: every option with its flag, variable and default. */
export function renderHelp(spec: AppConfigSpec): string {
  const rows = Object.entries(spec.options).map(([key, opt]) => {
    const shown = opt.secret ? '(unset)' : JSON.stringify(opt.default);
    return { flag: `${flagName(key)} <${schemaType(opt.schema) ?? 'value'}>`, env: envName(key, opt), text: `${opt.description} [default: ${shown}]` };
  });
  const width = Math.max(...rows.map((r) => r.flag.length));
  const envWidth = Math.max(...rows.map((r) => r.env.length));
  const lines = rows.map((r) => `  ${r.flag.padEnd(width)}  ${r.env.padEnd(envWidth)}  ${r.text}`);
  return [
    `aviary ${spec.app} — ${spec.summary}`,
    '',
    `Usage: node dist/apps/${spec.app}/main.js [options]`,
    '',
    'Every option is a flag or an environment variable; the flag wins.',
    '',
    ...lines,
    `  ${'--help'.padEnd(width)}  ${''.padEnd(envWidth)}  show this help`,
    '',
  ].join('\n');
}
