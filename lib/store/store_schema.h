/* store_schema.h — versioned schema migrations (internal).
 * Migration N is element N-1.  A released migration is never edited: a
 * change is a new element appended at the end. */
#ifndef KW_STORE_SCHEMA_H
#define KW_STORE_SCHEMA_H

extern const char *const kw_sqlite_migrations[];
extern const int kw_sqlite_migration_count;
extern const char *const kw_pg_migrations[];
extern const int kw_pg_migration_count;

#endif
