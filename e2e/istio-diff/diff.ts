import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, parse } from 'yaml';
import { validate } from '@aviary/mesh-validation';

/**
 * Differential test of Aviary's config validator against Istio's (`istioctl validate`): every
 * document of the corpus goes through both, one document per istioctl run (so a document's
 * verdict never depends on its neighbours). Shared by validation.e2e.ts and the report generator
 * (tools/istio/validation-report.mjs → docs/istio-validation.md).
 */

/** Paths below are relative to the repository root, which callers pass (bundled copies of this module run elsewhere). */
export const CORPUS_DIR = 'e2e/istio-diff/corpus';
export const ALLOW_LIST = 'e2e/istio-diff/allow-list.yaml';
const ENSURE_SCRIPT = 'tools/istio/ensure-istiod.sh';

/** Aviary's refusals of fields it does not translate (fields/registry.ts, rules/security.ts) say this. */
const unsupportedMarker = 'is not supported by Aviary';

export interface CorpusDocument {
  /** `Kind/name`: unique over the corpus. */
  readonly id: string;
  /** Relative to the repository root. */
  readonly file: string;
  readonly text: string;
  readonly value: unknown;
}

export interface Verdict {
  readonly accepted: boolean;
  /** Empty when accepted. */
  readonly message: string;
}

export type Outcome = 'agree' | 'unsupported' | 'allow-listed' | 'unexplained';

export interface DocumentResult {
  readonly doc: CorpusDocument;
  readonly istio: Verdict;
  readonly aviary: Verdict & { readonly unsupportedOnly: boolean };
  readonly outcome: Outcome;
  readonly reason?: string;
}

export interface AllowEntry {
  readonly document: string;
  readonly reason: string;
}

/** Builds istioctl when needed (minutes on a fresh machine) and returns its path. */
export async function ensureIstioctl(root: string): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [ENSURE_SCRIPT, '--istioctl'], { cwd: root, maxBuffer: 16 << 20 });
  const path = stdout.trim().split('\n').pop() ?? '';
  if (path === '') throw new Error(`${ENSURE_SCRIPT} --istioctl printed no path`);
  return path;
}

export async function istioctlVersion(bin: string): Promise<string> {
  const { stdout } = await promisify(execFile)(bin, ['version', '--remote=false', '--short']);
  return stdout.trim();
}

export function loadCorpus(root: string): CorpusDocument[] {
  const dir = join(root, CORPUS_DIR);
  const docs: CorpusDocument[] = [];
  const ids = new Set<string>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const path = join(dir, name);
    const source = readFileSync(path, 'utf8');
    for (const d of parseAllDocuments(source)) {
      if (d.errors.length > 0) throw new Error(`${name}: ${d.errors[0]!.message}`);
      const value = d.toJS() as { kind?: string; metadata?: { name?: string } } | null;
      if (value === null) continue;
      const id = `${value.kind}/${value.metadata?.name}`;
      if (ids.has(id)) throw new Error(`${name}: ${id} appears twice in the corpus`);
      ids.add(id);
      const [start, end] = d.range;
      docs.push({ id, file: relative(root, path), text: `${source.slice(start, end).trim()}\n`, value });
    }
  }
  return docs;
}

export function loadAllowList(root: string): AllowEntry[] {
  const file = join(root, ALLOW_LIST);
  const entries = (parse(readFileSync(file, 'utf8')) as AllowEntry[] | null) ?? [];
  for (const e of entries) {
    if (typeof e.document !== 'string' || typeof e.reason !== 'string' || e.reason.trim() === '') throw new Error(`${file}: every entry needs a document and a reason`);
  }
  return entries;
}

/** `istioctl validate -f -` on one document: exit 0 is acceptance. */
export function istioVerdict(bin: string, text: string): Promise<Verdict> {
  return new Promise((done, fail) => {
    const child = spawn(bin, ['validate', '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done(code === 0 ? { accepted: true, message: '' } : { accepted: false, message: tidy(out) }));
    child.stdin.end(text);
  });
}

/** istioctl wraps errors in "Error: N errors occurred: * Kind/ns/name: ..."; keep the messages. */
function tidy(out: string): string {
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^Error: \d+ errors? occurred:$/.test(l))
    .map((l) => l.replace(/^\* /, '').replace(/^Error: /, ''))
    .join('; ');
}

export function aviaryVerdict(value: unknown): DocumentResult['aviary'] {
  const { errors } = validate(value);
  return {
    accepted: errors.length === 0,
    message: errors.map((e) => `${e.path}: ${e.message}`).join('; '),
    unsupportedOnly: errors.length > 0 && errors.every((e) => e.message.includes(unsupportedMarker)),
  };
}

export function classify(istio: Verdict, aviary: DocumentResult['aviary'], allowed: AllowEntry | undefined): { outcome: Outcome; reason?: string } {
  if (istio.accepted === aviary.accepted) return { outcome: 'agree' };
  if (istio.accepted && aviary.unsupportedOnly) return { outcome: 'unsupported', reason: aviary.message };
  if (allowed !== undefined) return { outcome: 'allow-listed', reason: allowed.reason };
  return { outcome: 'unexplained' };
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface DiffResult {
  readonly results: DocumentResult[];
  /** Allow-list entries that name no disagreement (a stale entry, or a typo): an error too. */
  readonly staleAllowEntries: AllowEntry[];
}

export async function runDiff(bin: string, root: string): Promise<DiffResult> {
  const docs = loadCorpus(root);
  const allowList = loadAllowList(root);
  const allowed = new Map(allowList.map((e) => [e.document, e]));
  const results = await mapLimit(docs, 4, async (doc) => {
    const istio = await istioVerdict(bin, doc.text);
    const aviary = aviaryVerdict(doc.value);
    return { doc, istio, aviary, ...classify(istio, aviary, allowed.get(doc.id)) };
  });
  const used = new Set(results.filter((r) => r.outcome === 'allow-listed').map((r) => r.doc.id));
  return { results, staleAllowEntries: allowList.filter((e) => !used.has(e.document)) };
}

/** A disagreement as the test prints it: the document, Istio's and Aviary's message. */
export function describeResult(r: DocumentResult): string {
  const say = (v: Verdict) => (v.accepted ? 'accepts' : `rejects: ${v.message}`);
  return `${r.doc.id} (${r.doc.file})\n  istio ${say(r.istio)}\n  aviary ${say(r.aviary)}\n${r.doc.text.replace(/^/gm, '    | ')}`;
}
