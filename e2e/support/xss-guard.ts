import type { BrowserContext, Page } from '@playwright/test';

/**
 * Watches a browser context for any sign that user data ran as code:
 *   - a JavaScript dialog (alert/confirm/prompt) opening;
 *   - something assigning `window.__xss` (the payloads' canary);
 *   - a Content-Security-Policy violation (the server's CSP blocks inline handlers, so an
 *     injected `onerror=` would show up here even though it cannot run), except the bundle's
 *     own eval probe (see below).
 * Everything seen is appended to `found`, which a test expects to stay empty.
 */
export async function guardAgainstXss(context: BrowserContext, label: string, found: string[]): Promise<void> {
  await context.exposeBinding('__e2eReport', (_source, kind: string, detail: string) => {
    found.push(`[${label}] ${kind}: ${detail}`);
  });
  await context.addInitScript(() => {
    const w = window as unknown as { __e2eReport: (kind: string, detail: string) => Promise<void> };
    const report = (kind: string, detail: string) => void w.__e2eReport(kind, detail).catch(() => undefined);
    document.addEventListener(
      'securitypolicyviolation',
      (e) => {
        // The app's own bundle probes once per load whether eval works (zod's `allowsEval`, a
        // `Function('')` in try/catch); CSP refuses it, as intended. That is not user data: user
        // data could only ever show up as an inline handler or inline script.
        const fromBundle = e.sourceFile.startsWith(`${location.origin}/assets/`);
        if (e.blockedURI === 'eval' && fromBundle) return;
        report(
          'csp-violation',
          `${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} sample=${JSON.stringify(e.sample)} at ${e.sourceFile}:${e.lineNumber}`,
        );
      },
      true,
    );
    let value: unknown;
    Object.defineProperty(window, '__xss', {
      configurable: false,
      get: () => value,
      set: (v: unknown) => {
        value = v;
        report('canary', `window.__xss was set to ${String(v)} on ${location.pathname}`);
      },
    });
  });
  for (const page of context.pages()) watchDialogs(page, label, found);
  context.on('page', (page) => watchDialogs(page, label, found));
}

function watchDialogs(page: Page, label: string, found: string[]): void {
  page.on('dialog', (dialog) => {
    found.push(`[${label}] dialog ${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss().catch(() => undefined);
  });
}

/** No element a payload would have created exists in the page, and the canary is unset. */
export async function expectNoInjectedMarkup(page: Page): Promise<void> {
  const injected = await page.evaluate(() => ({
    imgs: document.querySelectorAll('img[src="x"], img[onerror]').length,
    svgs: document.querySelectorAll('svg[onload]').length,
    scripts: Array.from(document.scripts).filter((s) => s.textContent?.includes('__xss')).length,
    canary: (window as unknown as { __xss?: unknown }).__xss ?? null,
  }));
  if (injected.imgs || injected.svgs || injected.scripts || injected.canary !== null) {
    throw new Error(`user data became markup on ${page.url()}: ${JSON.stringify(injected)}`);
  }
}
