import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the chart keeps the one sidecar template, relative to the repository (or install) root. */
export const chartTemplatePath = join('charts', 'aviary', 'charts', 'injector-webhook', 'files', 'injection-template.yaml');

/**
 * The template file to load: the configured path, or else the chart's file found by walking up
 * from this module (apps/injector-webhook/src/lib in the repo, dist/apps/injector-webhook once
 * bundled; both sit under the root that holds charts/). In a cluster the chart mounts its file
 * and sets AVIARY_INJECTION_TEMPLATE_FILE.
 */
export function resolveTemplateFile(configured: string, from: string = dirname(fileURLToPath(import.meta.url))): string {
  if (configured !== '') return resolve(configured);
  let dir = from;
  for (;;) {
    const candidate = join(dir, chartTemplatePath);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return join(from, chartTemplatePath);
    dir = parent;
  }
}
