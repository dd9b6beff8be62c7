/** Field types shared by the schemas. Numbers and booleans may arrive as text from `${VAR}`, so their plain spellings are accepted. */
import { z } from 'zod';

const numberFromText = (v: unknown): unknown => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v);
const booleanFromText = (v: unknown): unknown => (v === 'true' ? true : v === 'false' ? false : v);

/** A whole number ≥ 0. */
export const count = (): z.ZodEffects<z.ZodNumber, number, unknown> =>
  z.preprocess(numberFromText, z.number().int('must be a whole number').nonnegative('must be a whole number ≥ 0'));

/** A whole number > 0. */
export const positive = (): z.ZodEffects<z.ZodNumber, number, unknown> =>
  z.preprocess(numberFromText, z.number().int('must be a whole number').positive('must be a whole number > 0'));

/** A whole number within [min, max]. */
export const between = (min: number, max: number): z.ZodEffects<z.ZodNumber, number, unknown> =>
  z.preprocess(numberFromText, z.number().int('must be a whole number').min(min, `must be ${min}–${max}`).max(max, `must be ${min}–${max}`));

export const flag = (): z.ZodEffects<z.ZodBoolean, boolean, unknown> => z.preprocess(booleanFromText, z.boolean());
