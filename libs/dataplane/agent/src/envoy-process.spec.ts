import { describe, expect, it } from 'vitest';
import { parseEnvoyLogLine } from './envoy-process';

describe('parseEnvoyLogLine', () => {
  it('maps Envoy levels to pino levels and keeps the logger name', () => {
    expect(parseEnvoyLogLine('warning|config|gRPC config stream closed: 14, connection refused')).toEqual({ level: 'warn', logger: 'config', msg: 'gRPC config stream closed: 14, connection refused' });
    expect(parseEnvoyLogLine('critical|main|error initializing configuration')).toMatchObject({ level: 'fatal', logger: 'main' });
    expect(parseEnvoyLogLine('info|upstream|a|b')).toEqual({ level: 'info', logger: 'upstream', msg: 'a|b' });
  });

  it('keeps a line in another format (a crash backtrace) as an error', () => {
    expect(parseEnvoyLogLine('Caught Segmentation fault, suspect faulting address 0x0')).toEqual({ level: 'error', logger: 'envoy', msg: 'Caught Segmentation fault, suspect faulting address 0x0' });
  });
});
