/** Checks across gateway.yaml `models` entries that one entry's schema cannot see: unique names, fallbacks that exist. */
import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';
import type { ModelConfig, ModelRouteConfig } from './types.js';

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

/**
 * Re-reads gateway.yaml when it changes and hands over its `models` and `modelRoute` (hot reload, like manifests).
 * A broken file is reported and the models in force stay; the other gateway.yaml settings still need a restart.
 */
export function watchGatewayModels(
  file: string,
  load: () => { problems: { file: string; line: number; message: string }[]; models: ModelConfig[]; modelRoute: ModelRouteConfig },
  apply: (models: ModelConfig[], modelRoute: ModelRouteConfig) => void,
  log: Pick<Logger, 'info' | 'error'>,
): () => void {
  let last = '';
  const check = () => {
    const r = load();
    if (r.problems.length > 0) {
      log.error({ file, problems: r.problems }, `gateway.yaml has problems; the models in force stay until it is fixed:\n${r.problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n')}`);
      return;
    }
    const next = JSON.stringify([r.models, r.modelRoute]);
    if (next === last) return;
    const first = last === '';
    last = next;
    if (first) return;
    apply(r.models, r.modelRoute);
    log.info({ file, models: r.models.map((m) => m.name) }, `gateway.yaml reloaded: ${r.models.length} model(s)`);
  };
  check();
  const listener = () => check();
  // Polling survives editors that replace the file instead of writing it in place.
  watchFile(file, { interval: 500, persistent: false }, listener);
  return () => unwatchFile(file, listener);
}
