/**
 * RELIABILITY C1: a model-based test of DESIGN §3's state machine. Real tokens are driven into
 * each of the 12 states through the API, the (database) clock and the fault hooks; then every
 * action (request, approve, reject, cancel, execute, finalize, restore) is tried against each.
 * Allowed pairs must make exactly the diagram's transition; every other pair must be refused with
 * the specified status (409 / 410 expired / 423 revoked / 404 unknown) and leave the token row,
 * the key row and the secrets byte-identical.
 */
import { ROTATION_STATUSES, type RotationStatus } from '@keyturn/shared';
import { randomUUID } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { api, createSecret, describeBoth, expectError, json, login, registerUser, type Response, setupAdmin, type TestUser, useTestApp } from './harness';
import {
  approveRes,
  approveRotation,
  cancelRes,
  dumpSecrets,
  dumpToken,
  dumpUserKeys,
  executeRes,
  FAKE_TEMP_PASSWORD,
  faultHooks,
  finalizeRes,
  keyVersion,
  type Pause,
  rejectRes,
  requestRotation,
  restoreRes,
  rotate,
  testClock,
  tokenRow,
} from './rotation.helpers';

const ACTIONS = ['approve', 'reject', 'cancel', 'execute', 'finalize', 'restore', 'request'] as const;
type Action = (typeof ACTIONS)[number];
type State = RotationStatus;
const OPEN: State[] = ['pending', 'approved', 'in_progress'];

/** DESIGN §3: the only transitions an action may make. Everything else is refused. */
const ALLOWED: Partial<Record<State, Partial<Record<Action, State>>>> = {
  pending: { approve: 'approved', reject: 'rejected', cancel: 'cancelled' },
  approved: { cancel: 'cancelled', execute: 'completed' },
  completed: { finalize: 'finalized', restore: 'rolled_back' },
};

/** The specified refusal for an action on a token in `state`. */
function refusal(state: State, action: Action): [number, string] {
  if (action === 'request') return [409, 'OPEN_REQUEST_EXISTS'];
  if (state === 'expired') return [410, 'TOKEN_EXPIRED'];
  if (state === 'revoked') return [423, 'TOKEN_REVOKED'];
  if (state === 'in_progress') return [409, 'LOST_RACE'];
  return [409, 'INVALID_STATE'];
}

interface Subject {
  state: State;
  user: TestUser;
  tokenId: string;
  tempPassword: string;
  /** in_progress only: the paused execute and its pending response. */
  pause?: Pause;
  running?: Promise<Response>;
}

describeBoth('rotation state machine (C1)', (backend) => {
  const clock = testClock();
  const faults = faultHooks();
  // A short token life, so moving the clock past it leaves the 8 h sessions alive.
  const t = useTestApp(backend, { env: { TOKEN_TTL_SECONDS: '3600' }, deps: { clock, rotationHooks: faults.hooks } });
  let admin: TestUser;
  const shared = new Map<State, Subject>();
  const covered = new Set<string>();

  afterAll(async () => {
    // Never leave a paused rotation behind, whatever failed.
    for (const s of shared.values()) {
      s.pause?.release(new Error('test teardown'));
      await s.running?.catch(() => {});
    }
  });

  async function freshUser(): Promise<TestUser> {
    admin ??= await setupAdmin(t.app);
    const u = await registerUser(t.app);
    await createSecret(t.app, u, { name: 'canary', value: `value of ${u.email}` });
    return u;
  }

  async function pendingFor(user: TestUser) {
    return { user, tokenId: (await requestRotation(t, user)).id, tempPassword: FAKE_TEMP_PASSWORD };
  }
  async function approvedFor(user: TestUser) {
    const p = await pendingFor(user);
    return { ...p, tempPassword: (await approveRotation(t, admin, p.tokenId)).tempPassword };
  }

  /** Drive a real token into `state` through the API, the clock or the fault hooks. */
  async function build(state: State): Promise<Subject> {
    const user = await freshUser();
    let s: Omit<Subject, 'state'>;
    switch (state) {
      case 'pending':
        s = await pendingFor(user);
        break;
      case 'approved':
        s = await approvedFor(user);
        break;
      case 'rejected':
        s = await pendingFor(user);
        expect((await rejectRes(t, admin, s.tokenId)).statusCode).toBe(200);
        break;
      case 'cancelled':
        s = await pendingFor(user);
        expect((await cancelRes(t, user, s.tokenId)).statusCode).toBe(200);
        break;
      case 'expired': {
        // Past expires_at by the database clock: refused (410) and expired on the spot.
        s = await approvedFor(user);
        clock.offsetMs = (t.config.TOKEN_TTL_SECONDS + 5) * 1000;
        try {
          expectError(await executeRes(t, user, { tokenId: s.tokenId, tempPassword: s.tempPassword }), 410, 'TOKEN_EXPIRED');
        } finally {
          clock.reset();
        }
        break;
      }
      case 'revoked': {
        s = await approvedFor(user);
        for (let i = 1; i < t.config.TEMP_PASSWORD_MAX_ATTEMPTS; i++) {
          expectError(await executeRes(t, user, { tokenId: s.tokenId, tempPassword: FAKE_TEMP_PASSWORD }), 401, 'WRONG_TEMP_PASSWORD');
        }
        expectError(await executeRes(t, user, { tokenId: s.tokenId, tempPassword: FAKE_TEMP_PASSWORD }), 423, 'TOKEN_REVOKED');
        break;
      }
      case 'in_progress': {
        // Claimed, then held at the first stage boundary (outside any transaction).
        s = await approvedFor(user);
        const pause = faults.pauseAt(s.tokenId, 'afterClaim');
        const running = executeRes(t, user, { tokenId: s.tokenId, tempPassword: s.tempPassword });
        await pause.reached;
        s = { ...s, pause, running };
        break;
      }
      case 'completed': {
        const r = await rotate(t, admin, user);
        s = { user: r.user, tokenId: r.token.id, tempPassword: r.approval.tempPassword };
        break;
      }
      case 'failed': {
        s = await approvedFor(user);
        faults.failAt(s.tokenId, 'afterBackup');
        expectError(await executeRes(t, user, { tokenId: s.tokenId, tempPassword: s.tempPassword }), 500);
        break;
      }
      case 'finalized': {
        const r = await rotate(t, admin, user);
        expect((await finalizeRes(t, admin, r.token.id)).statusCode).toBe(200);
        s = { user: r.user, tokenId: r.token.id, tempPassword: r.approval.tempPassword };
        break;
      }
      case 'rolled_back': {
        const r = await rotate(t, admin, user);
        expect((await restoreRes(t, admin, r.token.id)).statusCode).toBe(200);
        // Restore revokes the user's sessions; the (unchanged) password signs in again.
        s = { user: await login(t.app, user.email, user.password), tokenId: r.token.id, tempPassword: r.approval.tempPassword };
        break;
      }
      case 'superseded': {
        const first = await rotate(t, admin, user);
        const second = await rotate(t, admin, first.user);
        s = { user: second.user, tokenId: first.token.id, tempPassword: first.approval.tempPassword };
        break;
      }
    }
    expect((await tokenRow(t.database, s.tokenId))?.status).toBe(state);
    return { state, ...s };
  }

  async function subjectFor(state: State, action: Action): Promise<Subject> {
    if (ALLOWED[state]?.[action]) return build(state);
    let s = shared.get(state);
    if (!s) {
      s = await build(state);
      shared.set(state, s);
    }
    return s;
  }

  function act(action: Action, s: Pick<Subject, 'user' | 'tokenId' | 'tempPassword'>): Promise<Response> {
    switch (action) {
      case 'request':
        return api(t.app, s.user).post('/api/request_key_rotation', { reason: 'another one' });
      case 'approve':
        return approveRes(t, admin, s.tokenId);
      case 'reject':
        return rejectRes(t, admin, s.tokenId);
      case 'cancel':
        return cancelRes(t, s.user, s.tokenId);
      case 'execute':
        return executeRes(t, s.user, { tokenId: s.tokenId, tempPassword: s.tempPassword });
      case 'finalize':
        return finalizeRes(t, admin, s.tokenId);
      case 'restore':
        return restoreRes(t, admin, s.tokenId);
    }
  }

  for (const state of ROTATION_STATUSES) {
    for (const action of ACTIONS) {
      const to = ALLOWED[state]?.[action];
      const requestAllowed = action === 'request' && !OPEN.includes(state);
      const label = to ? `→ ${to}` : requestAllowed ? '→ a new pending request, this token untouched' : `refused ${refusal(state, action).join(' ')}`;

      it(`${state} × ${action}: ${label}`, async () => {
        covered.add(`${state}×${action}`);
        const s = await subjectFor(state, action);
        const kvBefore = await keyVersion(t.database, s.user.id);
        const before = { token: await dumpToken(t.database, s.tokenId), keys: await dumpUserKeys(t.database, s.user.id), secrets: await dumpSecrets(t.database, s.user.id) };
        const res = await act(action, s);

        if (to) {
          expect(res.statusCode, res.body).toBe(200);
          expect((await tokenRow(t.database, s.tokenId))?.status).toBe(to);
          // The key version moves only with execute (+1) and restore (back).
          const kv = await keyVersion(t.database, s.user.id);
          expect(kv).toBe(action === 'execute' ? kvBefore + 1 : action === 'restore' ? kvBefore - 1 : kvBefore);
          if (action === 'approve') expect(json(res)).toMatchObject({ status: 'approved', tempPassword: expect.any(String) });
          if (action === 'execute') expect(json(res)).toMatchObject({ status: 'completed', keyVersion: kvBefore + 1 });
          return;
        }
        if (requestAllowed) {
          expect(res.statusCode, res.body).toBe(201);
          expect(json(res)).toMatchObject({ status: 'pending', userId: s.user.id });
        } else {
          const [status, code] = refusal(state, action);
          expectError(res, status, code);
        }
        // Refused (or a request for a new token): this token, the keys and the secrets are untouched.
        expect(await dumpToken(t.database, s.tokenId)).toBe(before.token);
        expect(await dumpUserKeys(t.database, s.user.id)).toBe(before.keys);
        expect(await dumpSecrets(t.database, s.user.id)).toBe(before.secrets);

        if (state === 'in_progress' && action === 'request') {
          // Done with the running rotation: let it fail at the paused stage; it settles as failed.
          s.pause!.release(new Error('injected fault after claim'));
          expectError(await s.running!, 500);
          s.pause = undefined;
          expect(await tokenRow(t.database, s.tokenId)).toMatchObject({ status: 'failed', failure_reason: 'INTERNAL_ERROR' });
        }
      });
    }
  }

  it.each(['approve', 'reject', 'cancel', 'execute', 'finalize', 'restore'] as const)('an unknown token id × %s: 404, nothing written', async (action) => {
    const user = admin ?? (await freshUser());
    const id = randomUUID();
    const res = await act(action, { user, tokenId: id, tempPassword: FAKE_TEMP_PASSWORD });
    expectError(res, 404, 'NOT_FOUND');
    expect(await tokenRow(t.database, id)).toBeUndefined();
  });

  it('every (state × action) pair was exercised', () => {
    expect(covered.size).toBe(ROTATION_STATUSES.length * ACTIONS.length);
  });
});
