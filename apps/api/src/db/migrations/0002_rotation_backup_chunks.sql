CREATE TABLE "rotation_backup_chunks" (
	"token_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"chunk" integer NOT NULL,
	"row_count" integer NOT NULL,
	"data" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rotation_backup_chunks_token_id_chunk_pk" PRIMARY KEY("token_id","chunk")
);
--> statement-breakpoint
ALTER TABLE "rotation_backup_chunks" ADD CONSTRAINT "rotation_backup_chunks_token_id_rotation_tokens_id_fk" FOREIGN KEY ("token_id") REFERENCES "public"."rotation_tokens"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rotation_backup_chunks" ADD CONSTRAINT "rotation_backup_chunks_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "rotation_backup_chunks_user_idx" ON "rotation_backup_chunks" USING btree ("user_id");--> statement-breakpoint
-- Added by hand (drizzle-kit cannot express it): the chunks are random ciphertext, which does not
-- compress; EXTERNAL stores them out of line without trying pglz/lz4 on every write.
ALTER TABLE "rotation_backup_chunks" ALTER COLUMN "data" SET STORAGE EXTERNAL;
