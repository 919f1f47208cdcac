import { createHash } from 'node:crypto';
import nodemailer from 'nodemailer';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** The delivery's idempotency key: the Message-ID is derived from it, so a repeated delivery can be recognised. */
  idempotencyKey: string;
}

export interface Mailer {
  readonly enabled: boolean;
  readonly from: string | null;
  /** The SMTP server's answer on success; throws with its answer on failure. */
  send(m: MailMessage): Promise<string>;
  close(): void;
}

/** SMTP through nodemailer (README "Email"); without SMTP_URL, a mailer that is off. */
export function createMailer(config: { SMTP_URL?: string | undefined; MAIL_FROM?: string | undefined }): Mailer {
  if (!config.SMTP_URL) {
    return {
      enabled: false,
      from: null,
      send: async () => {
        throw new Error('email is not configured (set SMTP_URL)');
      },
      close: () => {},
    };
  }
  const url = new URL(config.SMTP_URL);
  const from = config.MAIL_FROM ?? `keyturn@${url.hostname}`;
  const transport = nodemailer.createTransport({
    host: url.hostname,
    port: Number(url.port) || (url.protocol === 'smtps:' ? 465 : 587),
    secure: url.protocol === 'smtps:',
    ...(url.username ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } } : {}),
    // Bounded waits: a dead mail server must not hold a dispatcher for minutes.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
    // Plain SMTP on a loopback or development server (a mail catcher) has no certificate to check.
    ...(url.searchParams.get('tls') === 'insecure' ? { tls: { rejectUnauthorized: false } } : {}),
  });
  return {
    enabled: true,
    from,
    async send(m) {
      const id = createHash('sha256').update(m.idempotencyKey).digest('hex').slice(0, 32);
      const info = await transport.sendMail({
        from,
        to: m.to,
        subject: m.subject,
        text: m.text,
        html: m.html,
        messageId: `<${id}@keyturn>`,
        headers: { 'X-Keyturn-Idempotency-Key': m.idempotencyKey },
      });
      return String(info.response ?? 'accepted');
    },
    close: () => transport.close(),
  };
}
