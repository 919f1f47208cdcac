import { parseArgs } from 'node:util';
import { AppError, EmailSchema, NewPasswordSchema, type SystemStatus } from '@keyturn/shared';
import { ConfigError, loadConfig } from '../config';
import { createContainer } from '../container';
import { databaseOptions, openDatabase, runMigrations } from '../db/client';
import { systemCtx } from '../lib/context';
import { progress, readPassword } from './prompt';

const USAGE = `Keyturn CLI — usage: pnpm cli <command> [options]
  (equivalently, from apps/api: node --import tsx src/cli/main.ts <command> [options])

  admin create --email <email> [--existing-admin <email>]
                          create the first admin (no admin yet) or another admin who shares the
                          admin master key (needs an existing admin's password). Passwords are read
                          without echo, or one per line from stdin when piped.
  maintenance cleanup     expire overdue tokens, purge old backups and ended sessions
  maintenance recover     settle interrupted rotations (stale in_progress locks)
  status                  rotation system health, and the last audit verify's verdict
  audit verify [--checkpoint-seq N --checkpoint-hash H]
                          recompute the audit hash chain (and compare with a checkpoint);
                          the verdict is recorded for status
  audit checkpoint        print the chain head (seq + hash) to keep off-box

  --json                  machine-readable output
Exit codes: 0 ok · 1 check failed or refused · 2 usage error · 3 configuration error · 4 unexpected error.
The CLI uses the same configuration (environment) as the server. With the embedded database
(no DATABASE_URL) stop the server first: PGlite allows one process at a time.`;

type Out = { json: boolean };
const print = (o: Out, human: string, data: unknown) => process.stdout.write(o.json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);

function table(rows: [string, string | number | null][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v ?? '—'}`).join('\n');
}

/** The last full verify's verdict, as one line of the status table. */
function auditLine(a: SystemStatus['audit']): string {
  if (a.verdict === 'never_verified') return `never verified (${a.appendedSince} events) — run: pnpm cli audit verify`;
  const since = `${a.appendedSince} appended since`;
  if (a.verdict === 'ok') return `ok: ${a.checked} events verified at ${a.verifiedAt}, ${since}`;
  return `BROKEN at #${a.firstBadSeq ?? '?'}: ${a.problem ?? 'unknown problem'} (verify at ${a.verifiedAt}; ${since})`;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      email: { type: 'string' },
      'existing-admin': { type: 'string' },
      'checkpoint-seq': { type: 'string' },
      'checkpoint-hash': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [cmd, sub] = positionals;
  if (values.help || !cmd) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const out: Out = { json: values.json };
  let config: ReturnType<typeof loadConfig>;
  try {
    // The CLI opens no sessions: it runs on a shared DATABASE_URL without JWT_SECRET.
    config = loadConfig(undefined, { sessions: false });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      return 3;
    }
    throw e;
  }
  const database = await openDatabase({ ...databaseOptions(config), poolSize: 2 });
  try {
    await runMigrations(database);
    const signer = {
      sign: () => {
        throw new Error('the CLI opens no sessions');
      },
      verify: () => {
        throw new Error('the CLI checks no sessions');
      },
    };
    const c = createContainer({ config, database, signer });
    const ctx = systemCtx(`cli-${Date.now()}`, `cli:${config.instanceId}`);

    if (cmd === 'admin' && sub === 'create') {
      const email = EmailSchema.safeParse(values.email ?? '');
      if (!email.success) {
        process.stderr.write('admin create needs --email <a valid email>\n');
        return 2;
      }
      const password = await readPassword(`New admin password for ${email.data}`);
      const pw = NewPasswordSchema.safeParse(password);
      if (!pw.success) {
        process.stderr.write(`Password refused: ${pw.error.issues.map((i) => i.message).join('; ')}\n`);
        return 2;
      }
      if (await c.setup.needed()) {
        await c.setup.completeWithoutSession(ctx, { email: email.data, password });
        print(out, `First admin ${email.data} created, with the admin master key.`, { created: email.data, first: true });
        return 0;
      }
      const existing = values['existing-admin'];
      if (!existing) {
        process.stderr.write('Admins exist already: pass --existing-admin <email> (their password shares the admin master key).\n');
        return 2;
      }
      const by = await c.repos.authRepo.findUserWithKeysByEmail(c.db, existing.trim().toLowerCase());
      if (by?.user.role !== 'admin') {
        process.stderr.write(`${existing} is not an administrator.\n`);
        return 1;
      }
      const existingPw = await readPassword(`Password of existing admin ${existing}`);
      const user = await c.setup.addAdmin(ctx, by.user.id, existingPw, { email: email.data, password });
      print(out, `Admin ${user.email} created; the admin master key is shared with them.`, { created: user.email, first: false, id: user.id });
      return 0;
    }

    if (cmd === 'maintenance' && (sub === 'cleanup' || sub === 'recover')) {
      const run = sub === 'cleanup' ? await c.maintenance.cleanup(ctx, { wait: true }) : await c.maintenance.recover(ctx, { wait: true });
      const rows = Object.entries(run!.changes) as [string, number][];
      const settled = (run!.settled ?? []).map((s) => `\n  ${s.tokenId} → ${s.to} (${s.reason})`).join('');
      print(out, `${sub} done at ${run!.at}\n${table(rows)}${settled}`, run);
      return 0;
    }

    if (cmd === 'status') {
      const s = await c.maintenance.status();
      const rows: [string, string | number | null][] = [
        ...Object.entries(s.counts).map(([k, v]) => [`tokens ${k}`, v] as [string, number]),
        ['oldest pending (s)', s.oldestPendingAgeSeconds],
        ['awaiting finalization', s.awaitingFinalization],
        ['stale locks', s.staleLocks],
        ['overdue expiries', s.overdueExpiries],
        ['restorable rotations', s.restorable.count ? `${s.restorable.count} (the first window ends ${s.restorable.nextWindowEnd})` : 0],
        ['AMK fingerprint', s.amkFingerprint],
        ['last cleanup', s.lastCleanup?.at ?? null],
        ['last recover', s.lastRecover?.at ?? null],
        ['audit chain', auditLine(s.audit)],
      ];
      print(out, table(rows), s);
      // Never verified is not a failure (nothing was found wrong); a broken verdict is.
      return s.audit.verdict !== 'broken' && s.staleLocks === 0 ? 0 : 1;
    }

    if (cmd === 'audit' && sub === 'verify') {
      const seq = values['checkpoint-seq'];
      const hash = values['checkpoint-hash'];
      if ((seq && !hash) || (!seq && hash) || (seq && !/^\d+$/.test(seq)) || (hash && !/^[0-9a-f]{64}$/.test(hash))) {
        process.stderr.write('give both --checkpoint-seq <n> and --checkpoint-hash <64 hex>\n');
        return 2;
      }
      const total = await c.audit.count();
      const bar = progress('verifying');
      bar.update(0, total);
      const checkpoint = seq && hash ? { seq: Number(seq), hash } : undefined;
      const v = await c.auditVerdicts.verifyAndRecord({ checkpoint, source: 'cli', instance: `cli:${config.instanceId}` });
      bar.update(total, total);
      bar.done();
      print(out, v.ok ? `audit chain ok: ${v.checked} events, head #${v.head?.seq ?? 0}` : `audit chain BROKEN at event #${v.firstBadSeq}: ${v.problem}`, v);
      return v.ok ? 0 : 1;
    }

    if (cmd === 'audit' && sub === 'checkpoint') {
      const v = await c.auditVerdicts.verifyAndRecord({ source: 'cli', instance: `cli:${config.instanceId}` });
      if (!v.ok) {
        print(out, `refusing to checkpoint a broken chain (event #${v.firstBadSeq}: ${v.problem})`, v);
        return 1;
      }
      const cp = { seq: v.head?.seq ?? 0, hash: v.head?.hash ?? '0'.repeat(64), at: new Date().toISOString() };
      print(out, `checkpoint: seq=${cp.seq} hash=${cp.hash}\nKeep it off this machine; verify later with: pnpm cli audit verify --checkpoint-seq ${cp.seq} --checkpoint-hash ${cp.hash}`, cp);
      return 0;
    }

    process.stderr.write(`unknown command: ${positionals.join(' ')}\n\n${USAGE}\n`);
    return 2;
  } catch (e) {
    if (e instanceof AppError) {
      process.stderr.write(`${e.code}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`unexpected error: ${(e as Error).message}\n`);
    return 4;
  } finally {
    await database.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(4);
  },
);
