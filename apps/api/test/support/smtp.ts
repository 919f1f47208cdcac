/**
 * A real SMTP server in the test process (the `smtp-server` package) on a loopback port: what
 * Keyturn's notification dispatcher sends arrives here, raw, and can be stopped and started again
 * on the same port to play an outage.
 */
import { SMTPServer } from 'smtp-server';
import { freePort } from './net';

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  subject: string;
  messageId: string;
}

export interface TestSmtp {
  readonly port: number;
  readonly url: string;
  readonly received: ReceivedMail[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

const header = (raw: string, name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(raw)?.[1]?.trim() ?? '';

export interface TestSmtpOptions {
  /** Runs after a mail was received in full and before the server answers 250 (hold it to play a client dying in between). */
  beforeAccept?: (mail: ReceivedMail) => Promise<void>;
}

export async function startTestSmtp(opts: TestSmtpOptions = {}): Promise<TestSmtp> {
  const port = await freePort();
  const received: ReceivedMail[] = [];
  let server: SMTPServer | null = null;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      server = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS', 'AUTH'],
        logger: false,
        onData(stream, session, callback) {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            const mail: ReceivedMail = {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
              raw,
              subject: header(raw, 'Subject'),
              messageId: header(raw, 'Message-ID'),
            };
            received.push(mail);
            void (opts.beforeAccept?.(mail) ?? Promise.resolve()).then(() => callback());
          });
        },
      });
      server.on('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      const s = server;
      server = null;
      s.close(() => resolve());
    });
  await start();
  return { port, url: `smtp://127.0.0.1:${port}`, received, start, stop };
}
