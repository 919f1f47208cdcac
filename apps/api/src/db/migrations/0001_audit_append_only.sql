-- The audit trail is append-only: the database itself refuses to edit or remove history.
CREATE SEQUENCE IF NOT EXISTS audit_events_seq AS bigint START 1;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION keyturn_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION keyturn_audit_append_only();
--> statement-breakpoint
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION keyturn_audit_append_only();
--> statement-breakpoint
-- A token's status is one of DESIGN §3's states.
ALTER TABLE rotation_tokens ADD CONSTRAINT rotation_tokens_status_check CHECK (status IN
  ('pending','approved','rejected','cancelled','expired','revoked','in_progress','completed','failed','finalized','rolled_back','superseded'));
--> statement-breakpoint
ALTER TABLE amk ADD CONSTRAINT amk_singleton_true CHECK (singleton);
