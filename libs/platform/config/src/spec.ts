import type { Static, TSchema } from 'typebox';

/** One configuration option: its schema, default, help text and where it is read from. */
export interface OptionSpec<S extends TSchema = TSchema> {
  readonly schema: S;
  readonly default: Static<S>;
  readonly description: string;
  /** Environment variable name; defaults to AVIARY_<UPPER_SNAKE_NAME>. */
  readonly env?: string;
  /** Never echo the value (tokens, keys) in help, errors or logs. */
  readonly secret?: boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface AppConfigSpec<O extends OptionSpecs = OptionSpecs> {
  /** The app's name as used in logs, metrics and `dist/apps/<app>`. */
  readonly app: string;
  readonly summary: string;
  readonly options: O;
}

export type ConfigOf<S extends AppConfigSpec> = {
  readonly [K in keyof S['options']]: Static<S['options'][K]['schema']>;
};

export function option<S extends TSchema>(
  schema: S,
  defaultValue: Static<S>,
  description: string,
  extra: { env?: string; secret?: boolean } = {},
): OptionSpec<S> {
  return { schema, default: defaultValue, description, ...extra };
}

export function defineConfig<O extends OptionSpecs>(spec: AppConfigSpec<O>): AppConfigSpec<O> {
  return spec;
}

export function envName(key: string, spec: OptionSpec): string {
  return spec.env ?? `AVIARY_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

export function flagName(key: string): string {
  return `--${key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()}`;
}
