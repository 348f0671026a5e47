// A reproducible tar writer for image layers: POSIX ustar headers, PAX records for long names,
// every entry owned by a fixed uid/gid with a fixed mtime, entries sorted by path. The same
// entries always give the same bytes (and so the same layer digest).
import { createHash } from 'node:crypto';

export type TarEntry =
  | { readonly type: 'file'; readonly path: string; readonly data: Buffer; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'dir'; readonly path: string; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string };

const BLOCK = 512;
/** Every entry's mtime: 1970-01-01 (SOURCE_DATE_EPOCH=0), so rebuilding changes no byte. */
export const TAR_MTIME = 0;

/** Rejects what a layer must never hold: absolute paths, `..`, empty or NUL-bearing names. */
export function normalizeTarPath(path: string): string {
  const p = path.replace(/^\.\//, '').replace(/\/+$/, '');
  if (p === '' || p.startsWith('/') || p.includes('\0') || p.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new Error(`tar: invalid entry path "${path}" (relative, no "." / ".." segments)`);
  }
  return p;
}

function octal(n: number, width: number): string {
  const s = n.toString(8);
  if (s.length > width - 1) throw new Error(`tar: value ${n} does not fit a ${width}-byte field`);
  return s.padStart(width - 1, '0') + '\0';
}

function header(fields: { name: string; mode: number; uid: number; gid: number; size: number; typeflag: string; linkname?: string; prefix?: string }): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(fields.name, 0, 100, 'utf8');
  h.write(octal(fields.mode, 8), 100, 8, 'ascii');
  h.write(octal(fields.uid, 8), 108, 8, 'ascii');
  h.write(octal(fields.gid, 8), 116, 8, 'ascii');
  h.write(octal(fields.size, 12), 124, 12, 'ascii');
  h.write(octal(TAR_MTIME, 12), 136, 12, 'ascii');
  h.fill(' ', 148, 156); // checksum field counts as spaces while summing
  h.write(fields.typeflag, 156, 1, 'ascii');
  if (fields.linkname !== undefined) h.write(fields.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  if (fields.prefix !== undefined) h.write(fields.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function pad(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** A PAX record "<len> <key>=<value>\n", where <len> counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** Splits a path into ustar's name (<= 100 bytes) and prefix (<= 155 bytes), if it fits. */
function splitUstar(path: string): { name: string; prefix?: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { name: path };
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  return undefined;
}

function entryChunks(e: TarEntry): Buffer[] {
  const path = normalizeTarPath(e.path) + (e.type === 'dir' ? '/' : '');
  const pax: string[] = [];
  let split = splitUstar(path);
  if (split === undefined) {
    pax.push(paxRecord('path', path));
    split = { name: path.slice(0, 99) };
  }
  let linkname: string | undefined;
  if (e.type === 'symlink') {
    if (e.target === '' || e.target.includes('\0')) throw new Error(`tar: invalid symlink target for "${e.path}"`);
    linkname = e.target;
    if (Buffer.byteLength(e.target) > 100) {
      pax.push(paxRecord('linkpath', e.target));
      linkname = e.target.slice(0, 99);
    }
  }
  const out: Buffer[] = [];
  if (pax.length > 0) {
    const body = Buffer.from(pax.join(''), 'utf8');
    out.push(header({ name: `PaxHeaders/${split.name}`.slice(0, 100), mode: 0o644, uid: 0, gid: 0, size: body.length, typeflag: 'x' }), body, pad(body.length));
  }
  const uid = e.type === 'symlink' ? 0 : (e.uid ?? 0);
  const gid = e.type === 'symlink' ? 0 : (e.gid ?? 0);
  if (e.type === 'file') {
    out.push(header({ ...split, mode: e.mode ?? 0o644, uid, gid, size: e.data.length, typeflag: '0' }), e.data, pad(e.data.length));
  } else if (e.type === 'dir') {
    out.push(header({ ...split, mode: e.mode ?? 0o755, uid, gid, size: 0, typeflag: '5' }));
  } else {
    out.push(header({ ...split, mode: 0o777, uid, gid, size: 0, typeflag: '2', linkname }));
  }
  return out;
}

/**
 * The tar archive of `entries`: sorted by path, parent directories first (missing parents are
 * added as root-owned 0755 dirs), duplicate paths refused.
 */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const byPath = new Map<string, TarEntry>();
  for (const e of entries) {
    const p = normalizeTarPath(e.path);
    if (byPath.has(p)) throw new Error(`tar: duplicate entry "${p}"`);
    byPath.set(p, { ...e, path: p });
  }
  for (const p of [...byPath.keys()]) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const existing = byPath.get(parent);
      if (existing === undefined) byPath.set(parent, { type: 'dir', path: parent });
      else if (existing.type !== 'dir') throw new Error(`tar: "${parent}" is a ${existing.type} but "${p}" lies under it`);
    }
  }
  const sorted = [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunks = sorted.flatMap(entryChunks);
  chunks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(chunks);
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
