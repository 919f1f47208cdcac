-- UNLOGGED added by hand (drizzle-kit cannot express it): request counters are written on every
-- request and need no WAL; a database crash forgets the current windows, which is harmless.
CREATE UNLOGGED TABLE "rate_limits" (
	"key" text PRIMARY KEY NOT NULL,
	"window_started_at" timestamp with time zone NOT NULL,
	"hits" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "key_hash" "bytea";--> statement-breakpoint
-- Added by hand: a session now proves on every request that it holds its session key, checked
-- against key_hash. Sessions made before this migration have none, so they end here (their users
-- sign in again) instead of being accepted on the session id alone.
UPDATE "sessions" SET "revoked_at" = now(), "revoked_reason" = 'session_proof_upgrade' WHERE "revoked_at" IS NULL;--> statement-breakpoint
ALTER TABLE "throttles" ADD COLUMN "in_flight" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "throttles" ADD COLUMN "last_reserved_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
-- Added by hand: a rotation's key-row snapshot no longer keeps an admin's AMK share wrapped under
-- their old (possibly leaked) password, and an admin's rotation is never restored; drop the shares
-- that snapshots written before this migration kept.
UPDATE "rotation_backups" SET "key_snapshot" = "key_snapshot" - 'amkWrap' WHERE "key_snapshot" ? 'amkWrap';
