import { parseArgs } from 'node:util';

/** A benchmark's command-line options: a string (`--name value` or `--name=value`) or a flag. */
export type OptionSpec = Readonly<Record<string, 'string' | 'boolean'>>;

/** The parsed options: strings where given, `true` for flags given. */
export interface BenchArgs {
  /** The value of `--name`, or `fallback` when it was not given. */
  str(name: string, fallback: string): string;
  /** `--name` as an integer of at least `min`, or `fallback`; anything else is a usage error. */
  int(name: string, fallback: number, min?: number): number;
  flag(name: string): boolean;
}

/** Thrown for a command line the benchmark cannot run with; the message says what and why. */
export class UsageError extends Error {}

/**
 * Parses a benchmark's arguments strictly (node:util parseArgs): an unknown option, a missing
 * value or a positional argument is a UsageError instead of a run with defaults, and `--help` is
 * reported as `help: true` so the caller prints its usage and exits before starting anything.
 */
export function parseBenchArgs(argv: readonly string[], spec: OptionSpec, positionals: readonly string[] = []): { help: boolean; args: BenchArgs } {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries([...Object.entries(spec).map(([name, type]) => [name, { type }]), ['help', { type: 'boolean', short: 'h' }]]);
    const parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: positionals.length > 0 });
    values = { ...(parsed.values as Record<string, string | boolean | undefined>) };
    // Positional arguments name string options in order (`citadel.js 5` is `--seconds 5`).
    if (parsed.positionals.length > positionals.length) throw new Error(`unexpected argument ${JSON.stringify(parsed.positionals[positionals.length])}`);
    parsed.positionals.forEach((v, i) => {
      const name = positionals[i]!;
      if (values[name] !== undefined) throw new Error(`${name} given twice (--${name} and as argument ${i + 1})`);
      values[name] = v;
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const str = (name: string, fallback: string): string => {
    const v = values[name];
    return typeof v === 'string' ? v : fallback;
  };
  const args: BenchArgs = {
    str,
    int(name, fallback, min = 0) {
      const raw = values[name];
      if (typeof raw !== 'string') return fallback;
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} ${JSON.stringify(raw)}: want an integer of at least ${min}`);
      return n;
    },
    flag: (name) => values[name] === true,
  };
  return { help: values['help'] === true, args };
}

/**
 * The arguments of a benchmark run from the command line: `--help` prints `usage` and exits 0;
 * a usage error (an unknown option here, a bad integer when it is read) prints the error and the
 * usage and exits 2, before anything starts.
 */
export function benchArgs(usage: string, spec: OptionSpec, opts: { readonly positionals?: readonly string[]; readonly argv?: readonly string[] } = {}): BenchArgs {
  const text = usage.endsWith('\n') ? usage : `${usage}\n`;
  const refuse = (err: unknown): never => {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${text}`);
    process.exit(2);
  };
  try {
    const { help, args } = parseBenchArgs(opts.argv ?? process.argv.slice(2), spec, opts.positionals);
    if (help) {
      process.stdout.write(text);
      process.exit(0);
    }
    return {
      ...args,
      int: (name, fallback, min) => {
        try {
          return args.int(name, fallback, min);
        } catch (err) {
          return refuse(err);
        }
      },
    };
  } catch (err) {
    return refuse(err);
  }
}
