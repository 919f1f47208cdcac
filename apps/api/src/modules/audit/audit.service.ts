import { AppError, type AuditExportQuery, type AuditOutcome, type AuditQuery, type AuditVerify } from '@keyturn/shared';
import type { Db, DbOrTx } from '../../db/client';
import type { RequestCtx } from '../../lib/context';
import { type AuditInput, type AuditRepo, eventHash, GENESIS_HASH } from './audit.repo';

export interface AuditEventSpec {
  action: string;
  outcome: AuditOutcome;
  target?: string | null;
  details?: Record<string, unknown>;
  /** Override the actor (e.g. a login before any session exists). */
  actor?: Partial<RequestCtx['actor']>;
}

/** Keys whose values must never reach the audit trail, whatever a caller passes. */
const FORBIDDEN_DETAIL_KEYS = /password|secret|token$|dek|kek|key$|value|cookie|authorization/i;

function scrub(details: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) {
    if (v === undefined) continue;
    // Numbers and booleans (counts, flags such as secretsReencrypted or passwordChanged) carry no secret.
    const safe = typeof v === 'number' || typeof v === 'boolean' || k === 'tokenId' || k === 'keyVersion';
    out[k] = FORBIDDEN_DETAIL_KEYS.test(k) && !safe ? '[redacted]' : v;
  }
  return out;
}

/** An audit write that fails refuses the change it records (RELIABILITY E3): 503, cause kept for the log. */
function auditUnavailable(e: unknown): never {
  if (e instanceof AppError) throw e;
  throw Object.assign(new AppError('UNAVAILABLE', 'The audit trail cannot be written right now, so nothing was changed. Try again shortly.', { retryAfterSeconds: 1 }), { cause: e });
}

export interface AuditServiceDeps {
  db: Db;
  repo: AuditRepo;
}

export function createAuditService({ db, repo }: AuditServiceDeps) {
  const toInput = (ctx: RequestCtx, e: AuditEventSpec): AuditInput => ({
    actorId: e.actor?.id !== undefined ? e.actor.id : ctx.actor.id,
    actorEmail: e.actor?.email !== undefined ? e.actor.email : ctx.actor.email,
    role: e.actor?.role ?? ctx.actor.role,
    action: e.action,
    target: e.target ?? null,
    outcome: e.outcome,
    requestId: ctx.requestId,
    clientAddress: ctx.clientAddress,
    details: scrub(e.details ?? {}),
  });

  return {
    /** In the caller's transaction: the change and its event commit or vanish together. */
    record: (tx: DbOrTx, ctx: RequestCtx, e: AuditEventSpec) => repo.append(tx, toInput(ctx, e)).catch(auditUnavailable),

    /** Denied and failed attempts, whose own transaction rolled back: a transaction of their own. */
    recordDetached: (ctx: RequestCtx, e: AuditEventSpec) => db.transaction((tx) => repo.append(tx as unknown as Db, toInput(ctx, e))).catch(auditUnavailable),

    list: (q: AuditQuery) => repo.list(db, q),

    /** Recompute the chain; report the first event that does not match. */
    async verify(checkpoint?: { seq: number; hash: string }, dbh: DbOrTx = db): Promise<AuditVerify> {
      let prev = GENESIS_HASH;
      let expectSeq = 1;
      let checked = 0;
      let head: { seq: number; hash: string } | null = null;
      let checkpointHash: string | null = null;
      for (;;) {
        const rows = await repo.page(dbh, expectSeq - 1, 5000);
        if (rows.length === 0) break;
        for (const r of rows) {
          const bad = (problem: string): AuditVerify => ({ ok: false, checked, firstBadSeq: r.seq, problem, head: null, checkpoint: null });
          if (r.seq !== expectSeq) return { ...bad(`event ${expectSeq} is missing`), firstBadSeq: expectSeq };
          if (r.prevHash !== prev) return bad('does not link to the event before it');
          const h = eventHash(prev, r.seq, r.atText, {
            actorId: r.actorId,
            actorEmail: r.actorEmail,
            role: r.role,
            action: r.action,
            target: r.target,
            outcome: r.outcome as AuditOutcome,
            requestId: r.requestId,
            clientAddress: r.clientAddress,
            details: r.details,
          });
          if (h !== r.hash) return bad('content does not match its hash');
          // `at` (what filters and the console use) must be the time the hash covers.
          if (!r.atMatches) return bad('its time does not match the time its hash covers');
          if (checkpoint && r.seq === checkpoint.seq) checkpointHash = r.hash;
          prev = r.hash;
          head = { seq: r.seq, hash: r.hash };
          expectSeq++;
          checked++;
        }
      }
      let cp: AuditVerify['checkpoint'] = null;
      if (checkpoint) {
        cp = { ...checkpoint, matches: checkpointHash === checkpoint.hash };
        if (!cp.matches) {
          return {
            ok: false,
            checked,
            firstBadSeq: checkpoint.seq,
            problem: checkpointHash === null ? 'the log ends before the checkpoint (truncated)' : 'the checkpoint hash differs (history rewritten)',
            head,
            checkpoint: cp,
          };
        }
      }
      return { ok: true, checked, firstBadSeq: null, problem: null, head, checkpoint: cp };
    },

    count: () => repo.count(db),
    /** The events matching the export's filters, oldest first, one page of `size` at a time. */
    async *pages(q: AuditExportQuery = {}, size = 2000) {
      for (let after = 0; ; ) {
        const page = await repo.page(db, after, size, q);
        if (page.length === 0) return;
        yield page;
        after = page[page.length - 1]!.seq;
      }
    },
  };
}
export type AuditService = ReturnType<typeof createAuditService>;
