/** One problem in one resource. `path` is a field path such as `spec.http[0].route[1].weight`. */
export interface Finding {
  readonly path: string;
  readonly message: string;
}

export interface ValidationResult {
  readonly errors: Finding[];
  readonly warnings: Finding[];
}

/** Collects findings while rules walk a resource. */
export class Report {
  readonly errors: Finding[] = [];
  readonly warnings: Finding[] = [];

  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  result(): ValidationResult {
    return { errors: dedupe(this.errors), warnings: dedupe(this.warnings) };
  }
}

function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.path}\u0000${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const identifier = /^[A-Za-z_$][\w$]*$/;

/** Appends an object key to a path: `a.b`, or `a["app.kubernetes.io/name"]` for keys that are not identifiers. */
export function key(path: string, name: string): string {
  if (identifier.test(name)) return path === '' ? name : `${path}.${name}`;
  return `${path}[${JSON.stringify(name)}]`;
}

/** Appends an array index to a path: `a[3]`. */
export function idx(path: string, i: number): string {
  return `${path}[${i}]`;
}
