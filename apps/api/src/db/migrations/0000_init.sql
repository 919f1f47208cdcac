CREATE TABLE "amk" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"public_key" "bytea" NOT NULL,
	"singleton" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "amk_singleton_unique" UNIQUE("singleton")
);
--> statement-breakpoint
CREATE TABLE "amk_wraps" (
	"admin_id" uuid PRIMARY KEY NOT NULL,
	"amk_id" uuid NOT NULL,
	"wrapped_private" "bytea" NOT NULL,
	"key_version" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sessions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"key_version" integer NOT NULL,
	"wrapped_dek" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	"revoked_reason" text
);
--> statement-breakpoint
CREATE TABLE "system_settings" (
	"key" text PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "throttles" (
	"key" text PRIMARY KEY NOT NULL,
	"failures" integer DEFAULT 0 NOT NULL,
	"window_started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"blocked_until" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "user_keys" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"key_version" integer NOT NULL,
	"kdf_salt" "bytea" NOT NULL,
	"kdf_params" jsonb NOT NULL,
	"auth_hash" "bytea" NOT NULL,
	"wrapped_dek" "bytea" NOT NULL,
	"dek_kcv" "bytea" NOT NULL,
	"adek_pending" "bytea",
	"adek_final" "bytea",
	"adek_finalized_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"email" text NOT NULL,
	"role" text DEFAULT 'user' NOT NULL,
	"disabled" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_email_unique" UNIQUE("email")
);
--> statement-breakpoint
CREATE TABLE "secrets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"key_version" integer NOT NULL,
	"name_ct" "bytea" NOT NULL,
	"value_ct" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rotation_backups" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"token_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"secret_id" uuid,
	"key_version" integer NOT NULL,
	"name_ct" "bytea",
	"value_ct" "bytea",
	"secret_created_at" timestamp with time zone,
	"secret_updated_at" timestamp with time zone,
	"key_snapshot" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rotation_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"status" text NOT NULL,
	"reason" text NOT NULL,
	"from_key_version" integer NOT NULL,
	"to_key_version" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"approved_at" timestamp with time zone,
	"approved_by" uuid,
	"self_approved" boolean DEFAULT false NOT NULL,
	"expires_at" timestamp with time zone,
	"temp_hash" "bytea",
	"failed_attempts" integer DEFAULT 0 NOT NULL,
	"decided_at" timestamp with time zone,
	"decided_by" uuid,
	"decision_note" text,
	"locked_at" timestamp with time zone,
	"lock_owner" text,
	"completed_at" timestamp with time zone,
	"secrets_reencrypted" integer,
	"result_digest" "bytea",
	"failed_at" timestamp with time zone,
	"failure_reason" text,
	"finalized_at" timestamp with time zone,
	"finalized_by" uuid,
	"rolled_back_at" timestamp with time zone,
	"rolled_back_by" uuid,
	"ended_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"at_text" text NOT NULL,
	"actor_id" uuid,
	"actor_email" text,
	"role" text NOT NULL,
	"action" text NOT NULL,
	"target" text,
	"outcome" text NOT NULL,
	"request_id" text,
	"client_address" text,
	"details" jsonb NOT NULL,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "maintenance_runs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"instance" text NOT NULL,
	"changes" jsonb NOT NULL,
	"settled" jsonb
);
--> statement-breakpoint
ALTER TABLE "amk_wraps" ADD CONSTRAINT "amk_wraps_admin_id_users_id_fk" FOREIGN KEY ("admin_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "amk_wraps" ADD CONSTRAINT "amk_wraps_amk_id_amk_id_fk" FOREIGN KEY ("amk_id") REFERENCES "public"."amk"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_keys" ADD CONSTRAINT "user_keys_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "secrets" ADD CONSTRAINT "secrets_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rotation_backups" ADD CONSTRAINT "rotation_backups_token_id_rotation_tokens_id_fk" FOREIGN KEY ("token_id") REFERENCES "public"."rotation_tokens"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rotation_backups" ADD CONSTRAINT "rotation_backups_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rotation_tokens" ADD CONSTRAINT "rotation_tokens_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rotation_tokens" ADD CONSTRAINT "rotation_tokens_approved_by_users_id_fk" FOREIGN KEY ("approved_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rotation_tokens" ADD CONSTRAINT "rotation_tokens_decided_by_users_id_fk" FOREIGN KEY ("decided_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rotation_tokens" ADD CONSTRAINT "rotation_tokens_finalized_by_users_id_fk" FOREIGN KEY ("finalized_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rotation_tokens" ADD CONSTRAINT "rotation_tokens_rolled_back_by_users_id_fk" FOREIGN KEY ("rolled_back_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "amk_wraps_amk_idx" ON "amk_wraps" USING btree ("amk_id");--> statement-breakpoint
CREATE INDEX "sessions_user_idx" ON "sessions" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "sessions_expires_idx" ON "sessions" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "secrets_user_idx" ON "secrets" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "rotation_backups_token_idx" ON "rotation_backups" USING btree ("token_id");--> statement-breakpoint
CREATE INDEX "rotation_backups_user_idx" ON "rotation_backups" USING btree ("user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "rotation_tokens_one_open_per_user" ON "rotation_tokens" USING btree ("user_id") WHERE status in ('pending', 'approved', 'in_progress');--> statement-breakpoint
CREATE INDEX "rotation_tokens_user_idx" ON "rotation_tokens" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "rotation_tokens_status_idx" ON "rotation_tokens" USING btree ("status");--> statement-breakpoint
CREATE INDEX "rotation_tokens_approved_by_idx" ON "rotation_tokens" USING btree ("approved_by");--> statement-breakpoint
CREATE INDEX "rotation_tokens_decided_by_idx" ON "rotation_tokens" USING btree ("decided_by");--> statement-breakpoint
CREATE INDEX "rotation_tokens_finalized_by_idx" ON "rotation_tokens" USING btree ("finalized_by");--> statement-breakpoint
CREATE INDEX "rotation_tokens_rolled_back_by_idx" ON "rotation_tokens" USING btree ("rolled_back_by");--> statement-breakpoint
CREATE INDEX "audit_events_actor_idx" ON "audit_events" USING btree ("actor_id");--> statement-breakpoint
CREATE INDEX "audit_events_action_idx" ON "audit_events" USING btree ("action");--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "maintenance_runs_kind_at_idx" ON "maintenance_runs" USING btree ("kind","at");