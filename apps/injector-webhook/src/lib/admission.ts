import { AviaryError, isAviaryError, type ErrorKind } from '@aviary/errors';

/** The parts of an `admission.k8s.io/v1` AdmissionReview request the webhooks read. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind?: { group?: string; version?: string; kind?: string };
  readonly resource?: { group?: string; version?: string; resource?: string };
  readonly subResource?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly operation?: string;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
}

export interface AdmissionReviewOut {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** Kubernetes' StatusReason for each error kind, for `response.status.reason`. */
const statusByKind: Readonly<Record<ErrorKind, { code: number; reason: string }>> = {
  INVALID_ARGUMENT: { code: 400, reason: 'BadRequest' },
  NOT_FOUND: { code: 404, reason: 'NotFound' },
  ALREADY_EXISTS: { code: 409, reason: 'AlreadyExists' },
  CONFLICT: { code: 409, reason: 'Conflict' },
  UNAUTHENTICATED: { code: 401, reason: 'Unauthorized' },
  PERMISSION_DENIED: { code: 403, reason: 'Forbidden' },
  PAYLOAD_TOO_LARGE: { code: 413, reason: 'RequestEntityTooLarge' },
  RESOURCE_EXHAUSTED: { code: 429, reason: 'TooManyRequests' },
  FAILED_PRECONDITION: { code: 412, reason: 'BadRequest' },
  UNAVAILABLE: { code: 503, reason: 'ServiceUnavailable' },
  DEADLINE_EXCEEDED: { code: 504, reason: 'Timeout' },
  INTERNAL: { code: 500, reason: 'InternalError' },
};

function badReview(message: string): AviaryError {
  return new AviaryError('INVALID_ARGUMENT', 'ADMISSION_REVIEW_INVALID', message);
}

/**
 * Parses an AdmissionReview body. Throws ADMISSION_REVIEW_INVALID (no uid can be echoed: the
 * edge answers HTTP 400) for malformed JSON, another kind or version, or a missing request.uid.
 */
export function parseAdmissionReview(body: string): AdmissionRequest {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw badReview(`the body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badReview('the body must be an AdmissionReview object');
  const review = doc as Record<string, unknown>;
  if (review['kind'] !== 'AdmissionReview') throw badReview(`kind must be AdmissionReview, not ${JSON.stringify(review['kind'] ?? null)}`);
  if (review['apiVersion'] !== 'admission.k8s.io/v1') {
    throw badReview(`apiVersion must be admission.k8s.io/v1, not ${JSON.stringify(review['apiVersion'] ?? null)} (set admissionReviewVersions: ["v1"])`);
  }
  const request = review['request'];
  if (typeof request !== 'object' || request === null || Array.isArray(request)) throw badReview('request is missing');
  const uid = (request as Record<string, unknown>)['uid'];
  if (typeof uid !== 'string' || uid === '' || uid.length > 256) throw badReview('request.uid must be a non-empty string');
  return request as AdmissionRequest;
}

export function review(response: AdmissionResponse): AdmissionReviewOut {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/** Allows the request; `patchJson` is an RFC 6902 patch as JSON text ("[]" or absent: no patch). */
export function allow(uid: string, patchJson?: string, warnings?: string[]): AdmissionReviewOut {
  const response: AdmissionResponse = { uid, allowed: true };
  if (patchJson !== undefined && patchJson !== '[]') {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(patchJson).toString('base64');
  }
  if (warnings !== undefined && warnings.length > 0) response.warnings = warnings;
  return review(response);
}

/** A denial with Kubernetes' Status: typed errors keep their message; anything else is "internal error". */
export function deny(uid: string, err: unknown, warnings?: string[]): AdmissionReviewOut {
  const kind: ErrorKind = isAviaryError(err) ? err.kind : 'INTERNAL';
  const message = isAviaryError(err) ? err.message : 'internal error';
  const { code, reason } = statusByKind[kind];
  const response: AdmissionResponse = { uid, allowed: false, status: { code, message, reason } };
  if (warnings !== undefined && warnings.length > 0) response.warnings = warnings;
  return review(response);
}
