import type { JWTRule } from '@aviary/mesh-api';
import { jwksSourceOf, type RequestAuthenticationEntry } from '@aviary/mesh-model';
import type { Ctx } from '../context';
import { typed, type Msg } from '../envoy';
import { AN, AT, JWT_PAYLOAD_KEY } from './names';

/**
 * RequestAuthentication → `envoy.filters.http.jwt_authn`, as Istio's authn policy applier
 * builds it: the JWT rules of every RequestAuthentication that applies, sorted by issuer, one
 * provider `origins-<i>` each; a request with no token passes (each provider OR
 * `allow_missing`), a request with a token that fails every provider gets 401; with several
 * providers the outer OR lets providers share a token location. Keys are always local: inline
 * `jwks`, or the key set pilot fetched for `jwksUri` or found through the issuer's OpenID Connect
 * discovery (never fetched by Envoy, which would need a cluster to the issuer). A key set pilot could not get is replaced by one whose private key
 * exists nowhere, so that issuer's tokens all fail (closed), as Istio does.
 *
 * The verified payload goes to dynamic metadata `envoy.filters.http.jwt_authn` key `payload`,
 * where the RBAC filters read `iss`, `sub`, `aud`, `azp` and claims.
 */

/** A JWKS with a freshly generated RSA public key whose private key was discarded. */
export const FAIL_CLOSED_JWKS = JSON.stringify({
  keys: [
    {
      kty: 'RSA',
      kid: 'aviary-fail-closed',
      alg: 'RS256',
      use: 'sig',
      e: 'AQAB',
      n: 'tfp6OQDdHRGzurP51BYyYvYhlklY_kNDoEW9uulMJUchzAENLgUhtpmigrkOvNWzPOpw9B4o4hSLGH1idpJy5SZ6oP8eTnGmkthkwn88NwFLP86jhNPZDk2tO1dGvdTFWFo0SZUUSxYF_NKBnk8WMluQr9zH5jsT10-OIw4BFliXRISy1BYGc8Ul2dRV4lHS_aUE6qir1oBSDjSEdOYqaQkm4lSksq0o6-_Ur3Lu5psgFAE-fg3XKowFsz_v5TJWgUUFqNCXIcyyzXJ4txnybaS8dZJc1UC0c7aT5fNZji6D8WPyz2UzCjvbUSOUCB6qPBo-BH-dphmpuLVp17ZCgw',
    },
  ],
});

function jwksFor(ctx: Ctx, entry: RequestAuthenticationEntry, rule: JWTRule): string {
  const uri = jwksSourceOf(rule);
  if (uri === undefined) return rule.jwks!;
  const resolved = ctx.snapshot.requestAuthentications.resolved(uri);
  if (resolved !== undefined && 'jwks' in resolved) return resolved.jwks;
  const why = resolved === undefined ? 'not fetched yet' : resolved.error;
  ctx.problem(`${entry.key}: JWKS for issuer ${rule.issuer} from ${uri} unavailable (${why}); tokens of that issuer are rejected`);
  return FAIL_CLOSED_JWKS;
}

function provider(ctx: Ctx, entry: RequestAuthenticationEntry, rule: JWTRule): Msg {
  return {
    issuer: rule.issuer,
    audiences: rule.audiences ?? [],
    local_jwks: { inline_string: jwksFor(ctx, entry, rule) },
    ...(rule.forwardOriginalToken === true && { forward: true }),
    from_headers: (rule.fromHeaders ?? []).map((h) => ({ name: h.name, ...(h.prefix !== undefined && h.prefix !== '' && { value_prefix: h.prefix }) })),
    from_params: rule.fromParams ?? [],
    from_cookies: rule.fromCookies ?? [],
    ...(rule.outputPayloadToHeader !== undefined && { forward_payload_header: rule.outputPayloadToHeader }),
    payload_in_metadata: JWT_PAYLOAD_KEY,
    claim_to_headers: (rule.outputClaimToHeaders ?? []).map((c) => ({ header_name: c.header, claim_name: c.claim })),
  };
}

const byIssuer = (a: { rule: JWTRule; order: number }, b: { rule: JWTRule; order: number }) =>
  a.rule.issuer < b.rule.issuer ? -1 : a.rule.issuer > b.rule.issuer ? 1 : a.order - b.order;

/** The jwt_authn HTTP filter for these RequestAuthentications; undefined when they have no rules. */
export function jwtAuthnFilter(ctx: Ctx, entries: readonly RequestAuthenticationEntry[]): Msg | undefined {
  const rules = entries.flatMap((entry) => (entry.spec.jwtRules ?? []).map((rule) => ({ entry, rule }))).map((r, order) => ({ ...r, order }));
  if (rules.length === 0) return undefined;
  rules.sort(byIssuer);
  const providers: Record<string, Msg> = {};
  const inner: Msg[] = [];
  const outer: Msg[] = [];
  rules.forEach(({ entry, rule }, i) => {
    const name = `origins-${i}`;
    providers[name] = provider(ctx, entry, rule);
    inner.push({ requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] } });
    outer.push({ provider_name: name });
  });
  const requires = inner.length === 1 ? inner[0]! : { requires_any: { requirements: [...outer, { requires_all: { requirements: inner } }] } };
  return {
    name: AN.jwtAuthn,
    typed_config: typed(AT.JwtAuthentication, { providers, rules: [{ match: { prefix: '/' }, requires }], bypass_cors_preflight: true }),
  };
}
