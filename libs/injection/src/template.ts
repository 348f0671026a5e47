import { parse as parseYaml } from 'yaml';
import { AviaryError } from '@aviary/errors';
import type { Container, JsonObject, JsonValue, Volume } from './types';

/**
 * The sidecar template (charts/aviary/charts/injector-webhook/files/injection-template.yaml),
 * parsed once. Rendering works on the YAML tree, never on text, so a value cannot change the
 * document's structure. The grammar is documented at the top of the template file.
 */
export interface InjectionTemplate {
  readonly source: JsonObject;
  /** The template compiled once: placeholders parsed, names split, so rendering is a tree walk. */
  readonly render: Render;
}

/** What a rendered template yields for one pod. */
export interface RenderedTemplate {
  readonly sidecar: Container;
  readonly initContainer: Container;
  readonly volumes: readonly Volume[];
  readonly podLabels: Readonly<Record<string, string>>;
  readonly prometheusAnnotations: Readonly<Record<string, string>>;
}

export type TemplateContext = Readonly<Record<string, unknown>>;

/** Builds a fresh value for one context (fresh objects every time: callers may mutate them). */
type Render = (ctx: TemplateContext) => JsonValue;

const PATH = '([A-Za-z_][\\w]*(?:\\.[A-Za-z_][\\w]*)*)';
const EXACT = new RegExp(`^\\{\\{\\s*${PATH}\\s*(?:\\|\\s*(string|json)\\s*)?\\}\\}$`);
const INLINE = new RegExp(`\\{\\{\\s*${PATH}\\s*(?:\\|\\s*(string|json)\\s*)?\\}\\}`, 'g');
const SECTION = new RegExp(`^\\{\\{\\s*#(if|unless)\\s+${PATH}\\s*\\}\\}$`);

function templateError(message: string): AviaryError {
  return new AviaryError('FAILED_PRECONDITION', 'TEMPLATE_INVALID', `injection template: ${message}`);
}

/** Parses and compiles the template text and checks it by rendering it with each sample context. Throws TEMPLATE_INVALID. */
export function loadInjectionTemplate(text: string, sampleContexts: readonly TemplateContext[]): InjectionTemplate {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw templateError(`not valid YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if (!isObject(doc)) throw templateError('the document must be a map');
  for (const key of ['sidecar', 'initContainer', 'volumes', 'podLabels', 'prometheusAnnotations']) {
    if (!(key in doc)) throw templateError(`missing top-level key "${key}"`);
  }
  const template: InjectionTemplate = { source: doc as JsonObject, render: compile(doc, '') };
  for (const ctx of sampleContexts) renderTemplate(template, ctx);
  return template;
}

/** Renders the template for one pod. Throws TEMPLATE_INVALID for a missing value or a bad shape. */
export function renderTemplate(template: InjectionTemplate, ctx: TemplateContext): RenderedTemplate {
  const out = template.render(ctx) as JsonObject;
  const sidecar = out['sidecar'];
  const initContainer = out['initContainer'];
  const volumes = out['volumes'];
  if (!isContainer(sidecar)) throw templateError('sidecar must be a container with a name and an image');
  if (!isContainer(initContainer)) throw templateError('initContainer must be a container with a name and an image');
  if (!Array.isArray(volumes) || !volumes.every((v) => isObject(v) && typeof v['name'] === 'string')) {
    throw templateError('volumes must be a list of volumes with names');
  }
  return {
    sidecar,
    initContainer,
    volumes: volumes as Volume[],
    podLabels: stringMap(out['podLabels'], 'podLabels'),
    prometheusAnnotations: stringMap(out['prometheusAnnotations'], 'prometheusAnnotations'),
  };
}

function compile(node: unknown, at: string): Render {
  if (typeof node === 'string') return compileString(node, at);
  if (Array.isArray(node)) {
    const parts = node.map((item, i): { section?: Condition; render: Render } => {
      const section = isObject(item) && Object.keys(item).length === 1 ? sectionOf(Object.keys(item)[0] as string, `${at}/${i}`) : undefined;
      if (section === undefined) return { render: compile(item, `${at}/${i}`) };
      const body = (item as Record<string, unknown>)[Object.keys(item)[0] as string];
      if (!Array.isArray(body)) throw templateError(`${at}/${i}: a section inside a list must hold a list`);
      return { section, render: compile(body, `${at}/${i}`) };
    });
    return (ctx) => {
      const out: JsonValue[] = [];
      for (const part of parts) {
        if (part.section === undefined) out.push(part.render(ctx));
        else if (part.section(ctx)) out.push(...(part.render(ctx) as JsonValue[]));
      }
      return out;
    };
  }
  if (isObject(node)) {
    const parts = Object.entries(node).map(([key, value]): { key: string; section?: Condition; render: Render } => {
      const section = sectionOf(key, `${at}/${key}`);
      if (section === undefined) return { key, render: compile(value, `${at}/${key}`) };
      if (!isObject(value)) throw templateError(`${at}/${key}: a section inside a map must hold a map`);
      return { key, section, render: compile(value, `${at}/${key}`) };
    });
    return (ctx) => {
      const out: JsonObject = {};
      for (const part of parts) {
        if (part.section === undefined) out[part.key] = part.render(ctx);
        else if (part.section(ctx)) Object.assign(out, part.render(ctx));
      }
      return out;
    };
  }
  if (node === null || typeof node === 'number' || typeof node === 'boolean') return () => node;
  throw templateError(`${at}: unsupported value`);
}

function compileString(text: string, at: string): Render {
  if (!text.includes('{{')) return () => text;
  const exact = EXACT.exec(text);
  if (exact !== null) {
    const get = accessor(exact[1] as string, at, true);
    const filter = exact[2];
    return (ctx) => applyFilter(get(ctx), filter, at);
  }
  // Literal text and placeholders alternate: [text, path, filter, text, path, filter, …, text].
  const pieces: (string | ((ctx: TemplateContext) => string))[] = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    pieces.push(text.slice(last, m.index));
    const get = accessor(m[1] as string, at, true);
    const filter = m[2] ?? 'string';
    pieces.push((ctx) => applyFilter(get(ctx), filter, at) as string);
    last = m.index + m[0].length;
  }
  pieces.push(text.slice(last));
  if (pieces.some((p) => typeof p === 'string' && p.includes('{{'))) throw templateError(`${at}: unrecognised placeholder in ${JSON.stringify(text)}`);
  return (ctx) => pieces.map((p) => (typeof p === 'string' ? p : p(ctx))).join('');
}

function applyFilter(value: unknown, filter: string | undefined, at: string): JsonValue {
  if (filter === 'json') return JSON.stringify(value);
  if (filter === 'string') {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw templateError(`${at}: only a scalar can be made a string`);
  }
  // A map or list from the context is copied, so the rendered tree shares nothing with it.
  return typeof value === 'object' && value !== null ? (structuredClone(value) as JsonValue) : (value as JsonValue);
}

type Condition = (ctx: TemplateContext) => boolean;

function sectionOf(key: string, at: string): Condition | undefined {
  const m = SECTION.exec(key);
  if (m === null) return undefined;
  const negate = m[1] === 'unless';
  const get = accessor(m[2] as string, at, false);
  return (ctx) => truthy(get(ctx)) !== negate;
}

function accessor(path: string, at: string, required: boolean): (ctx: TemplateContext) => unknown {
  const parts = path.split('.');
  const head = parts[0] as string;
  return (ctx) => {
    if (!Object.hasOwn(ctx, head)) throw templateError(`${at}: unknown name "${head}" in {{ ${path} }}`);
    let value: unknown = ctx;
    for (const part of parts) value = isObject(value) && Object.hasOwn(value, part) ? value[part] : undefined;
    if (required && (value === undefined || value === null)) throw templateError(`${at}: no value for {{ ${path} }}`);
    return value;
  };
}

function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return value !== undefined && value !== null && value !== false && value !== '' && value !== 0;
}

function stringMap(value: unknown, name: string): Record<string, string> {
  if (!isObject(value)) throw templateError(`${name} must be a map`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw templateError(`${name}/${k} must render to a string (use "| string")`);
    out[k] = v;
  }
  return out;
}

function isContainer(value: unknown): value is Container {
  return isObject(value) && typeof value['name'] === 'string' && value['name'] !== '' && typeof value['image'] === 'string';
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
