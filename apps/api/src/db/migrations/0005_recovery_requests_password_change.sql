CREATE TABLE "recovery_requests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"status" text NOT NULL,
	"key_version" integer NOT NULL,
	"public_key" "bytea" NOT NULL,
	"kdf_salt" "bytea" NOT NULL,
	"kdf_params" jsonb NOT NULL,
	"requester_address" text,
	"requester_user_agent" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"approved_at" timestamp with time zone,
	"approved_by" uuid,
	"escrow_source" text,
	"sealed_dek" "bytea",
	"sealed_amk" "bytea",
	"amk_id" uuid,
	"failed_attempts" integer DEFAULT 0 NOT NULL,
	"decided_at" timestamp with time zone,
	"decided_by" uuid,
	"decision_note" text,
	"completed_at" timestamp with time zone,
	"rotation_token_id" uuid,
	"failed_at" timestamp with time zone,
	"failure_reason" text,
	"notice_acked_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "user_keys" ADD COLUMN "password_changed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "rotation_tokens" ADD COLUMN "kind" text DEFAULT 'rotation' NOT NULL;--> statement-breakpoint
ALTER TABLE "recovery_requests" ADD CONSTRAINT "recovery_requests_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "recovery_requests" ADD CONSTRAINT "recovery_requests_approved_by_users_id_fk" FOREIGN KEY ("approved_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "recovery_requests" ADD CONSTRAINT "recovery_requests_decided_by_users_id_fk" FOREIGN KEY ("decided_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "recovery_requests" ADD CONSTRAINT "recovery_requests_rotation_token_id_rotation_tokens_id_fk" FOREIGN KEY ("rotation_token_id") REFERENCES "public"."rotation_tokens"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "recovery_requests_one_open_per_user" ON "recovery_requests" USING btree ("user_id") WHERE status in ('pending', 'approved');--> statement-breakpoint
CREATE INDEX "recovery_requests_user_idx" ON "recovery_requests" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "recovery_requests_status_idx" ON "recovery_requests" USING btree ("status");--> statement-breakpoint
CREATE INDEX "recovery_requests_approved_by_idx" ON "recovery_requests" USING btree ("approved_by");--> statement-breakpoint
CREATE INDEX "recovery_requests_decided_by_idx" ON "recovery_requests" USING btree ("decided_by");--> statement-breakpoint
CREATE INDEX "recovery_requests_rotation_token_idx" ON "recovery_requests" USING btree ("rotation_token_id");