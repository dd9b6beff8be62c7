/** Glob matching for tool, server and argument patterns: `*` any run of characters, `?` one character. Compiled once per reload. */

export type Matcher = (value: string) => boolean;

const never: Matcher = () => false;
const always: Matcher = () => true;

function escapeRegex(ch: string): string {
  return /[\\^$.|+()[\]{}]/.test(ch) ? `\\${ch}` : ch;
}

/** Compile one glob into a matcher. Plain names compare by equality (the common, fastest case). */
export function compileGlob(glob: string): Matcher {
  if (glob === '*') return always;
  if (!/[*?]/.test(glob)) return (v) => v === glob;
  let src = '^';
  for (const ch of glob) src += ch === '*' ? '.*' : ch === '?' ? '.' : escapeRegex(ch);
  const re = new RegExp(`${src}$`, 's');
  return (v) => re.test(v);
}

/** Whether some name starting with `prefix` matches `glob`. */
export function globReachesPrefix(glob: string, prefix: string): boolean {
  let i = 0;
  for (; i < glob.length && i < prefix.length; i++) {
    const c = glob[i];
    if (c === '*') return true;
    if (c !== '?' && c !== prefix[i]) return false;
  }
  return i === prefix.length;
}

/** Whether `glob` matches every name starting with `prefix`. */
export function globCoversPrefix(glob: string, prefix: string): boolean {
  return !glob.includes('?') && compileGlob(glob)(`${prefix}*`);
}

/** Compile a list of globs into one matcher that is true when any glob matches. */
export function compileGlobs(globs: readonly string[] | undefined): Matcher {
  if (!globs || globs.length === 0) return never;
  if (globs.includes('*')) return always;
  const exact = new Set<string>();
  const patterns: string[] = [];
  for (const g of globs) {
    if (/[*?]/.test(g)) patterns.push(g);
    else exact.add(g);
  }
  if (patterns.length === 0) return (v) => exact.has(v);
  const re = new RegExp(
    patterns.map((g) => `^${[...g].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : escapeRegex(c))).join('')}$`).join('|'),
    's',
  );
  return (v) => exact.has(v) || re.test(v);
}
