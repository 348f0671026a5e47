import { arr, invalid, isObj, num, obj, optStr, type Raw, str, wrappedBool } from './raw';

/**
 * Envoy's regexes are RE2 and always match the whole input. JS RegExp accepts more than RE2;
 * the RE2-only constructs we cannot honour (look-around, back-references) are rejected so that a
 * config Envoy would refuse is refused here too.
 */
export function compileRegex(regex: unknown, path: string, flags = ''): RegExp {
  let source = str(regex, path);
  // RE2's leading case-insensitive flag group (pilot's host matchers use it) is JS's `i` flag.
  if (source.startsWith('(?i)')) {
    source = source.slice(4);
    if (!flags.includes('i')) flags += 'i';
  }
  if (/\(\?<?[=!]/.test(source)) invalid(path, 'look-around is not supported by RE2');
  if (/(^|[^\\])\\[1-9]/.test(source)) invalid(path, 'back-references are not supported by RE2');
  try {
    return new RegExp(`^(?:${source})$`, flags);
  } catch (cause) {
    return invalid(path, `invalid regex: ${(cause as Error).message}`);
  }
}

/** `type.matcher.v3.RegexMatcher` (`{ regex }`; the engine field is ignored). */
export function regexMatcher(v: unknown, path: string, flags = ''): RegExp {
  return compileRegex(obj(v, path).regex, `${path}.regex`, flags);
}

export type StringPredicate = (value: string) => boolean;

/** `type.matcher.v3.StringMatcher`: exactly one of exact, prefix, suffix, safe_regex, contains. */
export function stringMatcher(v: unknown, path: string): StringPredicate {
  const o = obj(v, path);
  const ignoreCase = o.ignore_case === true;
  const norm = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  const kinds = ['exact', 'prefix', 'suffix', 'safe_regex', 'contains'].filter((k) => o[k] !== undefined && o[k] !== null);
  if (kinds.length !== 1) invalid(path, `exactly one of exact, prefix, suffix, safe_regex, contains is required (got ${kinds.length})`);
  const kind = kinds[0];
  if (kind === 'safe_regex') {
    const re = regexMatcher(o.safe_regex, `${path}.safe_regex`);
    return (s) => re.test(s);
  }
  const want = norm(str(o[kind as string], `${path}.${kind}`));
  switch (kind) {
    case 'exact':
      return (s) => norm(s) === want;
    case 'prefix':
      return (s) => norm(s).startsWith(want);
    case 'suffix':
      return (s) => norm(s).endsWith(want);
    default:
      return (s) => norm(s).includes(want);
  }
}

/** Header access for matching: pseudo headers (`:method`, `:path`, `:authority`) included. */
export type HeaderLookup = (name: string) => string | undefined;

export type HeaderPredicate = (get: HeaderLookup) => boolean;

/** `config.route.v3.HeaderMatcher`. Multiple values of a header are matched joined by `,`. */
export function headerMatcher(v: unknown, path: string): HeaderPredicate {
  const o = obj(v, path);
  const name = str(o.name, `${path}.name`).toLowerCase();
  const invert = o.invert_match === true;
  const missingAsEmpty = o.treat_missing_header_as_empty === true;
  let test: (value: string | undefined) => boolean;
  if (o.exact_match !== undefined) {
    const want = str(o.exact_match, `${path}.exact_match`);
    test = (s) => s === want;
  } else if (o.prefix_match !== undefined) {
    const want = str(o.prefix_match, `${path}.prefix_match`);
    test = (s) => s !== undefined && s.startsWith(want);
  } else if (o.suffix_match !== undefined) {
    const want = str(o.suffix_match, `${path}.suffix_match`);
    test = (s) => s !== undefined && s.endsWith(want);
  } else if (o.contains_match !== undefined) {
    const want = str(o.contains_match, `${path}.contains_match`);
    test = (s) => s !== undefined && s.includes(want);
  } else if (o.safe_regex_match !== undefined) {
    const re = regexMatcher(o.safe_regex_match, `${path}.safe_regex_match`);
    test = (s) => s !== undefined && re.test(s);
  } else if (o.string_match !== undefined) {
    const m = stringMatcher(o.string_match, `${path}.string_match`);
    test = (s) => s !== undefined && m(s);
  } else if (o.range_match !== undefined) {
    const r = obj(o.range_match, `${path}.range_match`);
    const start = num(r.start ?? 0, `${path}.range_match.start`);
    const end = num(r.end ?? 0, `${path}.range_match.end`);
    test = (s) => {
      if (s === undefined || !/^-?\d+$/.test(s)) return false;
      const n = Number(s);
      return n >= start && n < end;
    };
  } else if (o.present_match !== undefined) {
    const want = o.present_match === true;
    // present_match: presence itself is the test; invert_match flips it as Envoy does.
    return (get) => (get(name) !== undefined) === want !== invert;
  } else {
    // No match specifier: Envoy treats it as "header is present".
    return (get) => (get(name) !== undefined) !== invert;
  }
  return (get) => {
    let value = get(name);
    if (value === undefined && missingAsEmpty) value = '';
    if (value === undefined) return false; // a missing header never matches, inverted or not
    return test(value) !== invert;
  };
}

/** `config.route.v3.QueryParameterMatcher`. */
export function queryParameterMatcher(v: unknown, path: string): (query: URLSearchParams) => boolean {
  const o = obj(v, path);
  const name = str(o.name, `${path}.name`);
  if (o.present_match === true) return (q) => q.has(name);
  if (o.string_match !== undefined) {
    const m = stringMatcher(o.string_match, `${path}.string_match`);
    return (q) => {
      const value = q.get(name);
      return value !== null && m(value);
    };
  }
  return (q) => q.has(name);
}

export function headerMatchers(v: unknown, path: string): readonly HeaderPredicate[] {
  return arr(v, path).map((h, i) => headerMatcher(h, `${path}[${i}]`));
}

/** `config.core.v3.HeaderValueOption` list → header edits. */
export interface HeaderEdit {
  readonly key: string;
  readonly value: string;
  /** true: add a value beside existing ones; false: overwrite. */
  readonly append: boolean;
  /** Only when the header is absent (ADD_IF_ABSENT). */
  readonly ifAbsent: boolean;
}

export function headerEdits(v: unknown, path: string): readonly HeaderEdit[] {
  return arr(v, path).map((item, i) => {
    const p = `${path}[${i}]`;
    const o = obj(item, p);
    const h = obj(o.header, `${p}.header`);
    const key = str(h.key, `${p}.header.key`).toLowerCase();
    if (key.length === 0) invalid(`${p}.header.key`, 'must not be empty');
    const value = optStr(h.value, `${p}.header.value`) ?? '';
    const action = o.append_action;
    if (action !== undefined) {
      const a = String(action);
      if (a === 'OVERWRITE_IF_EXISTS_OR_ADD' || a === '2') return { key, value, append: false, ifAbsent: false };
      if (a === 'ADD_IF_ABSENT' || a === '1') return { key, value, append: false, ifAbsent: true };
      if (a === 'OVERWRITE_IF_EXISTS') return { key, value, append: false, ifAbsent: false };
      return { key, value, append: true, ifAbsent: false };
    }
    const append = wrappedBool(o.append, `${p}.append`);
    return { key, value, append: append ?? true, ifAbsent: false };
  });
}

export function headerNames(v: unknown, path: string): readonly string[] {
  return arr(v, path).map((h, i) => str(h, `${path}[${i}]`).toLowerCase());
}

/** Applies edits in order to a mutable header map (lowercase keys). */
export function applyHeaderEdits(headers: Record<string, string | string[] | undefined>, remove: readonly string[], add: readonly HeaderEdit[]): void {
  for (const name of remove) delete headers[name];
  for (const e of add) {
    const cur = headers[e.key];
    if (e.ifAbsent) {
      if (cur === undefined) headers[e.key] = e.value;
    } else if (e.append && cur !== undefined) {
      headers[e.key] = Array.isArray(cur) ? [...cur, e.value] : [cur, e.value];
    } else {
      headers[e.key] = e.value;
    }
  }
}

export function isRaw(v: unknown): v is Raw {
  return isObj(v);
}
