import { createHash, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FINGERPRINT_WORDS, fingerprint } from './fingerprint';

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const idFor = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

describe('the word list', () => {
  it('has exactly 256 distinct words, one per byte', () => {
    expect(FINGERPRINT_WORDS.length).toBe(256);
    expect(new Set(FINGERPRINT_WORDS).size).toBe(256);
  });

  it('words are lowercase ASCII letters only (so a dash-joined phrase splits back unambiguously)', () => {
    for (const w of FINGERPRINT_WORDS) expect(w).toMatch(/^[a-z]{3,8}$/);
  });
});

describe('fingerprint', () => {
  it('is four words from the list, joined by dashes', () => {
    const fp = fingerprint(ID);
    const words = fp.split('-');
    expect(words.length).toBe(4);
    for (const w of words) expect(FINGERPRINT_WORDS).toContain(w);
  });

  it('is deterministic', () => {
    expect(fingerprint(ID)).toBe(fingerprint(ID));
    const id = randomUUID();
    expect(fingerprint(id)).toBe(fingerprint(`${id}`));
  });

  it('is the documented derivation: word i = WORDS[sha256("keyturn/fingerprint/v1|" + id)[i]]', () => {
    const h = createHash('sha256').update(`keyturn/fingerprint/v1|${ID}`).digest();
    const expected = [0, 1, 2, 3].map((i) => FINGERPRINT_WORDS[h[i] ?? -1]).join('-');
    expect(fingerprint(ID)).toBe(expected);
  });

  it('honours the word count', () => {
    expect(fingerprint(ID, 1).split('-').length).toBe(1);
    expect(fingerprint(ID, 6).split('-').length).toBe(6);
    expect(fingerprint(ID, 6).startsWith(fingerprint(ID))).toBe(true);
  });

  it('differs across ids (no collisions among 2,000 sequential ids or ids differing in one character)', () => {
    const fps = new Set<string>();
    for (let i = 0; i < 2_000; i++) fps.add(fingerprint(idFor(i)));
    expect(fps.size).toBe(2_000);
    expect(fingerprint(ID)).not.toBe(fingerprint(ID.toUpperCase()));
    expect(fingerprint(ID)).not.toBe(fingerprint(`${ID.slice(0, -1)}f`));
  });

  it('uses the whole word list', () => {
    const used = new Set<string>();
    for (let i = 0; i < 2_000; i++) for (const w of fingerprint(idFor(i)).split('-')) used.add(w);
    expect(used.size).toBe(256);
  });
});
