/**
 * The first-run banner (hardening item 13): a box whose right border lines up on every line,
 * whatever the host, port and setup-code length. The server process prints exactly this
 * (test/ops.server.test.ts checks the printed banner too).
 */
import { describe, expect, it } from 'vitest';
import { firstRunBanner } from '../src/lib/banner';

const boxLines = (banner: string) => banner.split('\n').filter((l) => l.trim() !== '');

describe('first-run banner', () => {
  const hosts = ['127.0.0.1', '0.0.0.0', '::', '::1', 'localhost', 'a', 'keyturn.internal.department.example.com'];
  const ports = [0, 80, 3000, 65535];
  const codes = ['12345678', 'kt-setup-0123456789abcdef01234567', 'x'.repeat(200)];

  it('every line has the same width, for every host × port × code length × code source', () => {
    let checked = 0;
    for (const host of hosts)
      for (const port of ports)
        for (const code of codes)
          for (const fromEnv of [true, false]) {
            const lines = boxLines(firstRunBanner({ host, port, code, fromEnv }));
            const widths = new Set(lines.map((l) => [...l].length));
            expect(widths.size, lines.join('\n')).toBe(1);
            expect(lines[0]).toMatch(/^ {2}┌─+┐$/);
            expect(lines.at(-1)).toMatch(/^ {2}└─+┘$/);
            for (const l of lines.slice(1, -1)) expect(l).toMatch(/^ {2}│ .* │$/);
            // A code the operator set in SETUP_CODE is never echoed; a generated one is shown.
            expect(lines.join('\n').includes(code)).toBe(!fromEnv);
            expect(lines.join('\n').includes('SETUP_CODE')).toBe(fromEnv);
            checked++;
          }
    expect(checked).toBe(hosts.length * ports.length * codes.length * 2);
  });

  it('the URL: a wildcard address as localhost, an IPv6 address in brackets', () => {
    expect(firstRunBanner({ host: '0.0.0.0', port: 3000, code: 'c0de-c0de', fromEnv: false })).toContain('http://localhost:3000/setup');
    expect(firstRunBanner({ host: '::', port: 3000, code: 'c0de-c0de', fromEnv: false })).toContain('http://localhost:3000/setup');
    expect(firstRunBanner({ host: '::1', port: 8080, code: 'c0de-c0de', fromEnv: false })).toContain('http://[::1]:8080/setup');
    expect(firstRunBanner({ host: '10.0.0.7', port: 443, code: 'c0de-c0de', fromEnv: false })).toContain('http://10.0.0.7:443/setup');
  });
});
