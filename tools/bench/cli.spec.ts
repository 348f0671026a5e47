import { describe, expect, it } from 'vitest';
import { parseBenchArgs, UsageError } from './cli';

const spec = { services: 'string', 'node-flags': 'string', delta: 'boolean' } as const;

describe('parseBenchArgs', () => {
  it('reads strings, integers and flags, with fallbacks for what is not given', () => {
    const { help, args } = parseBenchArgs(['--services', '100', '--delta', '--node-flags=--trace-gc'], spec);
    expect(help).toBe(false);
    expect(args.int('services', 1000, 1)).toBe(100);
    expect(args.flag('delta')).toBe(true);
    expect(args.str('node-flags', '')).toBe('--trace-gc');
    expect(parseBenchArgs([], spec).args.int('services', 1000)).toBe(1000);
    expect(parseBenchArgs([], spec).args.flag('delta')).toBe(false);
  });

  it('reports --help instead of running', () => {
    expect(parseBenchArgs(['--help'], spec).help).toBe(true);
    expect(parseBenchArgs(['-h'], spec).help).toBe(true);
  });

  it('reads positional arguments as the named options, in order', () => {
    const { args } = parseBenchArgs(['5', '200'], { seconds: 'string', batch: 'string' }, ['seconds', 'batch']);
    expect(args.int('seconds', 3, 1)).toBe(5);
    expect(args.int('batch', 500, 1)).toBe(200);
    expect(() => parseBenchArgs(['5', '200', '7'], { seconds: 'string', batch: 'string' }, ['seconds', 'batch'])).toThrow('unexpected argument "7"');
    expect(() => parseBenchArgs(['5', '--seconds', '6'], { seconds: 'string' }, ['seconds'])).toThrow('seconds given twice');
  });

  it('refuses unknown options, positionals, missing values and non-integers', () => {
    expect(() => parseBenchArgs(['--servics', '10'], spec)).toThrow(UsageError);
    expect(() => parseBenchArgs(['--servics', '10'], spec)).toThrow(/--servics/);
    expect(() => parseBenchArgs(['extra'], spec)).toThrow(UsageError);
    expect(() => parseBenchArgs(['--services'], spec)).toThrow(UsageError);
    const { args } = parseBenchArgs(['--services', '1e3x'], spec);
    expect(() => args.int('services', 1000, 1)).toThrow('--services "1e3x": want an integer of at least 1');
    expect(() => parseBenchArgs(['--services', '0'], spec).args.int('services', 1000, 1)).toThrow(UsageError);
  });
});
