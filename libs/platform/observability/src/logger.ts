import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout, one object a line, with the app name on every line. */
export function createLogger(app: string, level: LevelWithSilent = 'info'): Logger {
  return pino({
    name: app,
    level,
    base: { app, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['token', '*.token', 'key', '*.key', 'privateKey', '*.privateKey', 'authorization', '*.authorization', 'req.headers.authorization'], censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  });
}
