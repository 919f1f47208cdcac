-- The first half of an audit append in one round trip (was two statements): take the chain's
-- advisory lock, then read the head and the event time. Each query in a VOLATILE plpgsql function
-- runs on a fresh snapshot taken when it starts (READ COMMITTED), so the head is read after the
-- lock is granted and sees the append the previous holder committed: the chain never forks.
CREATE OR REPLACE FUNCTION keyturn_audit_head_locked(lock_key bigint)
RETURNS TABLE (head_seq bigint, head_hash text, at_text text, at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  ts timestamptz;
BEGIN
  PERFORM pg_advisory_xact_lock(lock_key);
  ts := clock_timestamp();
  RETURN QUERY
    SELECT h.seq, h.hash, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), ts
    FROM (SELECT 1) AS one
    LEFT JOIN (SELECT e.seq, e.hash FROM audit_events AS e ORDER BY e.seq DESC LIMIT 1) AS h ON true;
END;
$$;
