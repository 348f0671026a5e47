import { templateNames } from './inject';
import { loadInjectionTemplate, type InjectionTemplate, type TemplateContext } from './template';
import { defaultInjectionValues, type InjectionValues } from './values';

/**
 * Parses the injection template and proves it renders: every placeholder resolves and the
 * result has the expected shape, in each combination of native sidecar, hold and rewritten
 * probes. Throws AviaryError TEMPLATE_INVALID, so a broken template fails the injector's start
 * rather than a pod's admission.
 */
export function parseInjectionTemplate(text: string, values: InjectionValues = defaultInjectionValues): InjectionTemplate {
  const sample = (native: boolean, hold: boolean, appProbers: string | undefined): TemplateContext => ({
    values,
    proxy: { resources: values.proxyResources },
    capture: values.capture,
    canonical: { name: 'sample', revision: 'latest' },
    native,
    hold,
    appProbers,
  });
  const template = loadInjectionTemplate(text, [sample(false, false, undefined), sample(false, true, '{}'), sample(true, false, '{}')]);
  templateNames(template);
  return template;
}
