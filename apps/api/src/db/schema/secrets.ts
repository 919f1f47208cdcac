import { index, integer, pgTable, uuid } from 'drizzle-orm/pg-core';
import { bytea, tsz, users } from './users';

/** Name and value sealed separately under the user's DEK; AAD binds (user, secret, key_version). */
export const secrets = pgTable(
  'secrets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    keyVersion: integer('key_version').notNull(),
    nameCt: bytea('name_ct').notNull(),
    valueCt: bytea('value_ct').notNull(),
    createdAt: tsz('created_at').notNull().defaultNow(),
    updatedAt: tsz('updated_at').notNull().defaultNow(),
  },
  (t) => [index('secrets_user_idx').on(t.userId)],
);
