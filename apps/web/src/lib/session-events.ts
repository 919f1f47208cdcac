/**
 * Why the user is being sent back to the sign-in page. The app subscribes once (app/providers)
 * and does the navigation; features and the api client only report.
 */
export type SessionEndReason = 'expired' | 'stale' | 'signed-out' | 'rotated';

type Listener = (reason: SessionEndReason) => void;
let listener: Listener | null = null;
let held = 0;

export const sessionEvents = {
  subscribe(l: Listener): () => void {
    listener = l;
    return () => {
      if (listener === l) listener = null;
    };
  },
  end(reason: SessionEndReason): void {
    // While the session is being replaced (key rotation), a 401 from a request that raced with
    // the old cookie is expected and must not throw the user out.
    if (held > 0 && (reason === 'expired' || reason === 'stale')) return;
    listener?.(reason);
  },
  /** Ignore "session ended" reports until the returned release function is called. */
  hold(): () => void {
    held++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        held--;
      }
    };
  },
};

export const SESSION_END_NOTICE: Record<SessionEndReason, string> = {
  expired: 'Your session ended, please sign in again.',
  stale: 'Your keys were rotated after you signed in. Please sign in again.',
  'signed-out': 'You have signed out.',
  rotated: 'Your keys were rotated. Sign in with your new password.',
};
