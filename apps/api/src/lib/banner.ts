/** Width in terminal cells of text without wide characters: one per code point. */
const width = (s: string) => [...s].length;

/**
 * The first-run banner the server prints while no admin exists: a box whose right border lines
 * up whatever the host, port and code length (the padding is computed, not typed).
 */
export function firstRunBanner(opts: { host: string; port: number; code: string; fromEnv: boolean }): string {
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? 'localhost' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const text = [
    'Keyturn first-run setup',
    `Open http://${host}:${opts.port}/setup and enter the setup code:`,
    // A code the operator set is theirs already: never echoed into the logs.
    opts.fromEnv ? '    (the code you set in SETUP_CODE)' : `    ${opts.code}`,
    'It works once; it creates the first admin and the admin master key.',
  ];
  const inner = Math.max(...text.map(width));
  const rule = '─'.repeat(inner + 2);
  const lines = [`  ┌${rule}┐`, ...text.map((t) => `  │ ${t}${' '.repeat(inner - width(t))} │`), `  └${rule}┘`];
  return `\n${lines.join('\n')}\n\n`;
}
