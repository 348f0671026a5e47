/** One RFC 6901 reference token: `~` → `~0`, `/` → `~1` (in that order). */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A JSON pointer from unescaped tokens: pointer('metadata', 'annotations', 'a/b') → /metadata/annotations/a~1b. */
export function pointer(...tokens: readonly (string | number)[]): string {
  return tokens.map((t) => `/${escapePointerToken(String(t))}`).join('');
}
