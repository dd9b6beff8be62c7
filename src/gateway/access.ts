/** The caller's access as the gateway resolves it; the Access filter itself belongs to the catalog. */
import type { Access } from '../catalog/access.js';
import type { Caller } from './types.js';

export { allowAll, reaches, type Access } from '../catalog/access.js';

export type AccessResolver = (caller: Caller) => Access;
