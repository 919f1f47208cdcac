import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { settle } from './ui';

type AxeResults = Awaited<ReturnType<AxeBuilder['analyze']>>;
type Violation = AxeResults['violations'][number];

/** The impacts this suite refuses; "minor" and "moderate" are reported but do not fail. */
const BLOCKING = new Set(['serious', 'critical']);

export interface A11yFinding {
  screen: string;
  id: string;
  impact: string;
  help: string;
  helpUrl: string;
  nodes: { target: string; html: string; summary: string }[];
}

function toFindings(screen: string, violations: Violation[]): A11yFinding[] {
  return violations.map((v) => ({
    screen,
    id: v.id,
    impact: v.impact ?? 'unknown',
    help: v.help,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({
      target: n.target.map(String).join(' '),
      html: n.html.slice(0, 200),
      summary: (n.failureSummary ?? '').replace(/\s+/g, ' ').trim(),
    })),
  }));
}

export function formatFindings(findings: A11yFinding[]): string {
  if (findings.length === 0) return '(none)';
  return findings
    .map(
      (f) =>
        `• [${f.impact}] ${f.id} on "${f.screen}": ${f.help} (${f.helpUrl})\n` +
        f.nodes.map((n) => `    - ${n.target}\n      ${n.html}\n      ${n.summary}`).join('\n'),
    )
    .join('\n');
}

/**
 * Collects axe results screen by screen; `blocking` holds the serious and critical ones. A test
 * scans all its screens first and asserts once, so a failure lists every problem at once.
 */
export class A11yReport {
  readonly blocking: A11yFinding[] = [];
  readonly other: A11yFinding[] = [];
  readonly screens: string[] = [];

  async scan(page: Page, screen: string, opts: { include?: string } = {}): Promise<void> {
    await settle(page);
    let builder = new AxeBuilder({ page });
    if (opts.include) builder = builder.include(opts.include);
    const results = await builder.analyze();
    this.screens.push(screen);
    for (const f of toFindings(screen, results.violations)) (BLOCKING.has(f.impact) ? this.blocking : this.other).push(f);
  }

  /** Every finding, blocking or not, as JSON (attached to the test's report). */
  json(): string {
    return JSON.stringify({ screens: this.screens, blocking: this.blocking, other: this.other }, null, 2);
  }

  /** For the test's failure message. */
  summary(): string {
    return [
      `Scanned: ${this.screens.join(' | ')}`,
      `Serious or critical violations (${this.blocking.length}):`,
      formatFindings(this.blocking),
    ].join('\n');
  }
}
