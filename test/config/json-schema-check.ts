/** A small JSON Schema (2020-12 subset) checker: enough to run samples through the editor schemas in schema/. */

export type JsonSchema = { [keyword: string]: unknown };

function resolveRef(root: JsonSchema, ref: string): JsonSchema {
  if (!ref.startsWith('#/')) throw new Error(`only local refs are supported: ${ref}`);
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown>)[part];
  if (!node || typeof node !== 'object') throw new Error(`dangling $ref ${ref}`);
  return node as JsonSchema;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(expected: string, actual: string): boolean {
  return expected === actual || (expected === 'number' && actual === 'integer');
}

const SUPPORTED = new Set([
  '$schema', '$id', '$defs', 'title', 'description', '$ref', 'type', 'properties', 'additionalProperties', 'required',
  'enum', 'const', 'pattern', 'minLength', 'items', 'minItems', 'minimum', 'maximum', 'anyOf', 'oneOf',
]);

/** Errors as `path: reason`; empty when the value is valid. */
export function checkJsonSchema(root: JsonSchema, value: unknown, schema: JsonSchema = root, path = '$'): string[] {
  for (const k of Object.keys(schema)) if (!SUPPORTED.has(k)) throw new Error(`unsupported keyword '${k}' at ${path}`);
  const errors: string[] = [];
  if (typeof schema.$ref === 'string') errors.push(...checkJsonSchema(root, value, resolveRef(root, schema.$ref), path));
  const actual = typeOf(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => typeMatches(t, actual))) return [...errors, `${path}: expected ${types.join('|')}, got ${actual}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${path}: not in enum`);
  if ('const' in schema && schema.const !== value) errors.push(`${path}: not ${String(schema.const)}`);
  if (typeof value === 'string') {
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: does not match ${schema.pattern}`);
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) errors.push(`${path}: too short`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${path}: above ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) errors.push(`${path}: too few items`);
    if (schema.items) value.forEach((item, i) => errors.push(...checkJsonSchema(root, item, schema.items as JsonSchema, `${path}[${i}]`)));
  }
  if (actual === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
    for (const key of (schema.required ?? []) as string[]) if (!(key in obj)) errors.push(`${path}: missing ${key}`);
    for (const [key, v] of Object.entries(obj)) {
      if (props[key]) errors.push(...checkJsonSchema(root, v, props[key], `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unknown ${key}`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        errors.push(...checkJsonSchema(root, v, schema.additionalProperties as JsonSchema, `${path}.${key}`));
      }
    }
  }
  if (Array.isArray(schema.anyOf)) {
    const results = (schema.anyOf as JsonSchema[]).map((s) => checkJsonSchema(root, value, s, path));
    if (!results.some((r) => r.length === 0)) errors.push(`${path}: no anyOf branch matches (${results.map((r) => r[0]).join('; ')})`);
  }
  if (Array.isArray(schema.oneOf)) {
    const passing = (schema.oneOf as JsonSchema[]).filter((s) => checkJsonSchema(root, value, s, path).length === 0).length;
    if (passing !== 1) errors.push(`${path}: ${passing} oneOf branches match, expected exactly 1`);
  }
  return errors;
}

export { resolveRef };
