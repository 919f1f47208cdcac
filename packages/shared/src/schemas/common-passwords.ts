/**
 * Passwords of at least 12 characters that appear near the top of public breach corpora, plus
 * the shapes they are made of (a repeated character, a keyboard or digit run, a common word with
 * digits). Compared case-insensitively. This is a floor, not a breach database: deployments that
 * need one can put a k-anonymity lookup in front of registration.
 */
const LIST = `
password1234 password12345 password123456 password1234567 password12345678 passwordpassword
123456789012 1234567890123 12345678901234 123456789123 1234512345 123123123123 111111111111
000000000000 123456123456 987654321098 qwertyuiopas qwertyuiop123 qwertyuiop1234 1qaz2wsx3edc
1q2w3e4r5t6y 1q2w3e4r5t6y7u 1q2w3e4r5t6y7u8i qazwsxedcrfv zaq12wsxcde3 asdfghjkl123 asdfghjkl;'
qwerty123456 qwerty1234567 abc123abc123 abcdefghijkl abcdefghijklmn abcd12345678 iloveyou1234
iloveyouiloveyou letmein12345 welcome12345 welcome123456 welcome2024! welcome2025! welcome2026!
administrator admin1234567 admin123456789 administrator1 rootpassword changeme1234 changemenow!
trustno11234 football1234 baseball1234 superman1234 princess1234 sunshine1234 starwars1234
dragon123456 monkey123456 master123456 shadow123456 michael12345 jennifer1234 whatever1234
passw0rd1234 p@ssw0rd1234 p@ssword1234 p@$$w0rd1234 Password123! Password1234! Password2024!
Password2025! Password2026! Passw0rd123! Summer2024!! Winter2024!! Spring2025!! Autumn2025!!
correcthorsebatterystaple thequickbrownfox 1234567890qwerty
qwerty1234567890 q1w2e3r4t5y6 a1b2c3d4e5f6 zxcvbnm12345 zxcvbnmasdfg 147258369147 159357159357
mypassword123 mypassword1234 secretpassword topsecret1234 letmeinletmein opensesame123
keyturn123456 keyturnkeyturn vaultpassword secrets123456 password!@#$ !@#$%^&*()_+ 1234qwerasdf
qwertyqwerty asdfasdfasdf iloveyou123456 football12345 computer1234 internet1234 samsung12345
`;

/** Entries that contain spaces: LIST is split on whitespace, so they cannot live there. */
const PHRASES = ['correct horse battery staple'];

const SET = new Set(
  [...LIST.split(/\s+/).filter(Boolean), ...PHRASES].map((s) => s.toLowerCase()),
);

const RUNS = ['0123456789', 'abcdefghijklmnopqrstuvwxyz', 'qwertyuiop', 'asdfghjkl', 'zxcvbnm'];

export function isCommonPassword(pw: string): boolean {
  const lower = pw.toLowerCase();
  if (SET.has(lower)) return true;
  const chars = [...lower];
  if (new Set(chars).size <= 2) return true; // aaaaaaaaaaaa, abababababab
  // all of it is one run of digits or letters, forwards or backwards, possibly repeated
  const compact = lower.replace(/[^a-z0-9]/g, '');
  if (compact.length >= lower.length - 2) {
    for (const run of RUNS) {
      const twice = run + run + run;
      const rev = [...twice].reverse().join('');
      if (twice.includes(compact) || rev.includes(compact)) return true;
    }
  }
  // a listed password with a trailing run of digits or punctuation
  const stem = lower.replace(/[\d!@#$%^&*.?_-]+$/, '');
  if (stem.length >= 6 && stem !== lower && (SET.has(stem) || ['password', 'passw0rd', 'p@ssw0rd', 'qwerty', 'iloveyou', 'welcome', 'admin', 'letmein', 'keyturn'].includes(stem))) return true;
  return false;
}
