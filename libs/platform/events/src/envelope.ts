import { randomUUID } from 'node:crypto';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { AviaryError } from '@aviary/errors';
import { subjectSchemas, replySchemas, type EventData, type Subject } from './subjects';

/** The versioned envelope every event travels in. `type` is the subject, which carries the version. */
export const Envelope = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128 }),
  source: Type.String({ minLength: 1, maxLength: 253 }),
  type: Type.String({ minLength: 1, maxLength: 253 }),
  time: Type.String({ format: 'date-time' }),
  data: Type.Unknown(),
});

export interface Event<S extends Subject> {
  readonly id: string;
  readonly source: string;
  readonly type: S;
  readonly time: string;
  readonly data: EventData<S>;
}

const envelopeValidator = Compile(Envelope);
const dataValidators = new Map(Object.entries(subjectSchemas).map(([subject, schema]) => [subject, Compile(schema)]));
const replyValidators = new Map(Object.entries(replySchemas).map(([subject, schema]) => [subject, Compile(schema)]));

export const MAX_EVENT_BYTES = 1024 * 1024;

export function createEnvelope<S extends Subject>(subject: S, source: string, data: EventData<S>, now: Date = new Date()): Event<S> {
  return { id: randomUUID(), source, type: subject, time: now.toISOString(), data };
}

/** Validates an outgoing event and returns its wire bytes; throws EVENT_INVALID. */
export function encodeEvent<S extends Subject>(event: Event<S>): Uint8Array {
  assertData(event.type, event.data, dataValidators);
  const bytes = Buffer.from(JSON.stringify(event));
  if (bytes.byteLength > MAX_EVENT_BYTES) {
    throw new AviaryError('INVALID_ARGUMENT', 'EVENT_TOO_LARGE', `${event.type}: event of ${bytes.byteLength} bytes exceeds ${MAX_EVENT_BYTES}`);
  }
  return bytes;
}

/** Parses and validates an incoming event for `subject`; throws EVENT_INVALID naming the problem. */
export function decodeEvent<S extends Subject>(subject: S, bytes: Uint8Array): Event<S> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new AviaryError('INVALID_ARGUMENT', 'EVENT_INVALID', `${subject}: payload is not JSON`);
  }
  const errors = envelopeValidator.Errors(parsed);
  if (errors.length > 0) {
    throw new AviaryError('INVALID_ARGUMENT', 'EVENT_INVALID', `${subject}: envelope${errors[0]!.instancePath}: ${errors[0]!.message}`);
  }
  const env = parsed as Static<typeof Envelope>;
  if (env.type !== subject) {
    throw new AviaryError('INVALID_ARGUMENT', 'EVENT_INVALID', `${subject}: envelope type ${JSON.stringify(env.type)} does not match the subject`);
  }
  assertData(subject, env.data, dataValidators);
  return env as Event<S>;
}

export function validateReply(subject: string, data: unknown): void {
  assertData(subject, data, replyValidators);
}

function assertData(subject: string, data: unknown, validators: Map<string, ReturnType<typeof Compile>>): void {
  const validator = validators.get(subject);
  if (validator === undefined) throw new AviaryError('INVALID_ARGUMENT', 'EVENT_INVALID', `${subject}: unknown subject`);
  const errors = validator.Errors(data);
  if (errors.length > 0) {
    const first = errors[0]!;
    throw new AviaryError('INVALID_ARGUMENT', 'EVENT_INVALID', `${subject}: data${first.instancePath}: ${first.message}`, {
      errors: errors.slice(0, 10).map((e) => ({ path: `data${e.instancePath}`, message: e.message })),
    });
  }
}
