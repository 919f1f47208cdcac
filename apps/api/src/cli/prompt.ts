import { stdin, stderr } from 'node:process';

/** Read a password: without echo on a terminal, or one line from stdin when piped. */
export async function readPassword(label: string): Promise<string> {
  if (!stdin.isTTY) return readLine();
  stderr.write(`${label}: `);
  stdin.setRawMode(true);
  stdin.resume();
  let buf = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          cleanup();
          stderr.write('\n');
          resolve(buf);
          return;
        }
        if (ch === '\u0003') {
          cleanup();
          reject(new Error('cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') buf = [...buf].slice(0, -1).join('');
        else buf += ch;
      }
    };
    const cleanup = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

let pending: string[] | null = null;
async function readLine(): Promise<string> {
  if (pending === null) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    pending = Buffer.concat(chunks).toString('utf8').split(/\r?\n/);
  }
  return pending.shift() ?? '';
}

/** A one-line progress bar on stderr (only on a terminal). */
export function progress(label: string) {
  const tty = stderr.isTTY;
  return {
    update(done: number, total: number) {
      if (!tty || total <= 0) return;
      const w = 30;
      const f = Math.min(w, Math.round((done / total) * w));
      stderr.write(`\r${label} [${'#'.repeat(f)}${'.'.repeat(w - f)}] ${done}/${total}`);
    },
    done() {
      if (tty) stderr.write('\n');
    },
  };
}
