import { type Socket, createServer } from 'node:net';

/**
 * A minimal SMTP receiver on 127.0.0.1 for the email specs: it accepts every message and keeps
 * it, so a spec can switch "the mail server" on (and read what Keyturn sent) or leave the port
 * closed (connection refused). Plain SMTP only: it advertises no STARTTLS and no AUTH.
 */
export interface ReceivedMail {
  from: string;
  to: string[];
  /** The raw message (headers and body) as received, dot-unstuffed. */
  data: string;
}

export interface FakeSmtp {
  port: number;
  received: ReceivedMail[];
  close(): Promise<void>;
}

const address = (line: string): string => line.match(/<([^>]*)>/)?.[1] ?? line.split(':').slice(1).join(':').trim();

export async function startFakeSmtp(port = 0): Promise<FakeSmtp> {
  const received: ReceivedMail[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    let buf = '';
    let inData = false;
    let mail: ReceivedMail = { from: '', to: [], data: '' };
    const reply = (s: string) => socket.write(`${s}\r\n`);
    reply('220 smtp.e2e.keyturn.test ESMTP');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end === -1) return;
          mail.data = buf.slice(0, end).replace(/^\.\./gm, '.');
          buf = buf.slice(end + 5);
          inData = false;
          received.push(mail);
          reply(`250 2.0.0 Ok: queued as E2E${received.length}`);
          mail = { from: '', to: [], data: '' };
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl === -1) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-smtp.e2e.keyturn.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n');
        else if (verb === 'HELO') reply('250 smtp.e2e.keyturn.test');
        else if (verb === 'MAIL') {
          mail = { from: address(line), to: [], data: '' };
          reply('250 2.1.0 Ok');
        } else if (verb === 'RCPT') {
          mail.to.push(address(line));
          reply('250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'RSET') {
          mail = { from: '', to: [], data: '' };
          reply('250 2.0.0 Ok');
        } else if (verb === 'NOOP') reply('250 2.0.0 Ok');
        else if (verb === 'QUIT') {
          reply('221 2.0.0 Bye');
          socket.end();
          return;
        } else reply('502 5.5.2 Command not recognized');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fake SMTP server has no port');
  return {
    port: addr.port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
