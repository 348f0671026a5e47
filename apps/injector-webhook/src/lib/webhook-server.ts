import type { Server } from 'node:https';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { AviaryError } from '@aviary/errors';
import type { Logger } from '@aviary/observability';
import type { ServingCertificate } from '@aviary/serving-tls';
import { allow, deny, parseAdmissionReview, type AdmissionRequest, type AdmissionReviewOut } from './admission';
import type { Injector } from './injector';
import type { InjectorMetrics, Webhook } from './metrics';
import type { MeshValidator } from './validator';

export interface WebhookServerOptions {
  readonly injector: Injector;
  readonly validator: MeshValidator;
  readonly metrics: InjectorMetrics;
  readonly logger: Logger;
  readonly bodyLimit: number;
  readonly certificate: ServingCertificate;
}

export interface WebhookServer {
  readonly app: FastifyInstance<Server>;
  /** Swaps the serving certificate for new connections, without a restart. */
  setCertificate(cert: ServingCertificate): void;
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

/**
 * The HTTPS admission server: POST /inject (mutating) and POST /validate (validating), each
 * taking and answering an `admission.k8s.io/v1` AdmissionReview. A review that cannot be
 * answered (not JSON, wrong kind or version, no request.uid, over the body limit) gets HTTP
 * 400/413 with `{code, message}`; any review with a uid gets an AdmissionReview, a refusal
 * being `allowed: false` with a Status message. Nothing a client sends can crash it.
 */
export function buildWebhookServer(opts: WebhookServerOptions): WebhookServer {
  const { injector, validator, metrics } = opts;
  const app = Fastify({
    https: { key: opts.certificate.keyPem, cert: opts.certificate.certPem, minVersion: 'TLSv1.2' },
    bodyLimit: opts.bodyLimit,
    // Kubernetes times a webhook out after 10 s by default; nothing here should take 1 ms.
    requestTimeout: 15_000,
    connectionTimeout: 15_000,
    keepAliveTimeout: 60_000,
    return503OnClosing: true,
  }) as unknown as FastifyInstance<Server>;

  // The body is parsed by the handler so that malformed JSON becomes a clear review error.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, _request, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const webhook = _request.url.startsWith('/validate') ? 'validate' : 'inject';
      injector.record(webhook, 'error', 'body-too-large', {});
      return reply.status(413).send({ code: 'PAYLOAD_TOO_LARGE', message: `the AdmissionReview is larger than ${opts.bodyLimit} bytes` });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ code: err.code ?? 'BAD_REQUEST', message: err.message });
    }
    opts.logger.error({ err }, 'webhook request failed');
    return reply.status(500).send({ code: 'INTERNAL', message: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]} (use POST /inject or POST /validate)` });
  });

  const handle = (webhook: Webhook, decide: (req: AdmissionRequest, bodyBytes: number) => AdmissionReviewOut) => async (request: { body: unknown }, reply: FastifyReply) => {
    const started = performance.now();
    const text = typeof request.body === 'string' ? request.body : '';
    let req: AdmissionRequest;
    try {
      req = parseAdmissionReview(text);
    } catch (err) {
      injector.record(webhook, 'error', 'malformed-review', {}, err);
      const e = err as AviaryError;
      return reply.status(400).send({ code: e.code, message: e.message });
    }
    const answer = decide(req, Buffer.byteLength(text));
    const body = JSON.stringify(answer);
    metrics.duration.observe({ webhook }, (performance.now() - started) / 1000);
    return reply.header('content-type', 'application/json; charset=utf-8').send(body);
  };

  app.post('/inject', handle('inject', (req, bodyBytes) => {
    const who = { uid: req.uid, name: podName(req) };
    if (req.kind?.kind !== undefined && req.kind.kind !== 'Pod') {
      injector.record('inject', 'skipped', 'not-a-pod', who);
      return allow(req.uid);
    }
    if ((req.subResource ?? '') !== '' || (req.operation !== undefined && req.operation !== 'CREATE')) {
      injector.record('inject', 'skipped', 'not-create', who);
      return allow(req.uid);
    }
    const pod = req.object as Json | undefined;
    const meta = pod?.['metadata'] as Json | undefined;
    const namespace = req.namespace || (typeof meta?.['namespace'] === 'string' ? meta['namespace'] : '') || 'default';
    // The pod is part of the body, so the body's size bounds the pod's.
    const outcome = injector.inject('inject', pod, { name: namespace }, who, { podBytes: bodyBytes });
    if (outcome.result === 'error') return deny(req.uid, outcome.error);
    return allow(req.uid, outcome.plan?.patchJson);
  }));

  app.post('/validate', handle('validate', (req) => {
    const who = { uid: req.uid, kind: req.kind?.kind, namespace: req.namespace, name: req.name };
    if (req.operation === 'DELETE') {
      injector.record('validate', 'allowed', 'delete', who);
      return allow(req.uid);
    }
    let result: ReturnType<MeshValidator['validate']>;
    try {
      result = validator.validate(req.object);
    } catch (err) {
      injector.record('validate', 'error', 'internal', who, err);
      return deny(req.uid, err);
    }
    const warnings = result.warnings.map((w) => `${w.path}: ${w.message}`);
    if (result.errors.length === 0) {
      injector.record('validate', 'allowed', 'valid', who);
      return allow(req.uid, undefined, warnings);
    }
    const subject = `${req.kind?.kind ?? 'resource'} ${req.namespace ? `${req.namespace}/` : ''}${req.name ?? ''}`.trim();
    const message = `${subject} is invalid: ${result.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`;
    const err = new AviaryError('INVALID_ARGUMENT', 'CONFIG_INVALID', message, { errors: result.errors });
    injector.record('validate', 'denied', 'invalid', who, err);
    return deny(req.uid, err, warnings);
  }));

  return {
    app,
    setCertificate: (cert) => app.server.setSecureContext({ key: cert.keyPem, cert: cert.certPem, minVersion: 'TLSv1.2' }),
    listen: async (host, port) => {
      await app.listen({ host, port });
      const address = app.server.address();
      return typeof address === 'object' && address !== null ? address.port : port;
    },
    close: () => app.close(),
  };
}

function podName(req: AdmissionRequest): string | undefined {
  const meta = (req.object as Json | undefined)?.['metadata'] as Json | undefined;
  const name = meta?.['name'] ?? meta?.['generateName'] ?? req.name;
  return typeof name === 'string' ? name : undefined;
}
