/**
 * The gateway's list cursor records its position in every upstream: which servers still have pages and the
 * upstream cursor for each. Every upstream page stays reachable.
 */

export type Positions = Record<string, string>; // server → upstream cursor ('' = first page)

export function encodeCursor(pos: Positions): string | undefined {
  if (Object.keys(pos).length === 0) return undefined;
  return Buffer.from(JSON.stringify(pos), 'utf8').toString('base64url');
}

/** Returns undefined for a cursor the gateway did not make. */
export function decodeCursor(cursor: string): Positions | undefined {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    for (const x of Object.values(v)) if (typeof x !== 'string') return undefined;
    return v as Positions;
  } catch {
    return undefined;
  }
}
