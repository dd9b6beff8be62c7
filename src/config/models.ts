/** Checks across gateway.yaml `models` entries that one entry's schema cannot see: unique names, fallbacks that exist. */
import type { ModelConfig } from './types.js';

export interface ModelProblem {
  path: (string | number)[];
  message: string;
}

type ModelEntry = Pick<ModelConfig, 'name' | 'provider' | 'fallbacks'>;

export function modelProblems(models: readonly ModelEntry[]): ModelProblem[] {
  const problems: ModelProblem[] = [];
  const byName = new Map<string, ModelEntry>();
  models.forEach((m, idx) => {
    if (byName.has(m.name)) problems.push({ path: ['models', idx, 'name'], message: `model '${m.name}' is listed twice; give each entry its own name` });
    else byName.set(m.name, m);
  });
  models.forEach((m, idx) => {
    m.fallbacks.forEach((f, j) => {
      const path = ['models', idx, 'fallbacks', j];
      const target = byName.get(f);
      if (f === m.name) problems.push({ path, message: `model '${m.name}' names itself as a fallback; remove it` });
      else if (!target) problems.push({ path, message: `fallback '${f}' of model '${m.name}' is not a model in this file; add it under models or remove it` });
      else if (target.provider !== m.provider) {
        problems.push({ path, message: `fallback '${f}' is a ${target.provider} model but '${m.name}' is ${m.provider}: a fallback must speak the same format` });
      }
    });
  });
  return problems;
}
