/* project_settings.c — a project's browser SDK settings (the switches its
 * remote config serves), stored as columns of the project row but read and
 * written on their own: only the remote config, the project's JSON and the
 * admin's PATCH need them, so every other project read stays as narrow as
 * it was.  The statements are in sql.c. */
#include <stddef.h>

#include "keyward/keyward.h"
#include "store/db.h"

static const struct kw_db_field SETTINGS_FIELDS[] = {
    KW_DB_INT(kw_project_settings, autocapture_opt_out),
    KW_DB_INT(kw_project_settings, capture_performance_opt_in),
    KW_DB_INT(kw_project_settings, heatmaps_opt_in),
};

int kw_store_project_settings_get(kw_store *s, int64_t project_id, kw_project_settings *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PROJECT_SETTINGS_GET, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    if ((rc = kw_db_one(st))) return rc;
    return kw_db_finish(st, kw_db_read_row(st, KW_DB_FIELDS(SETTINGS_FIELDS), out));
}

int kw_store_project_settings_set(kw_store *s, int64_t project_id, const kw_project_settings *in)
{
    const int values[] = {in->autocapture_opt_out, in->capture_performance_opt_in,
                          in->heatmaps_opt_in};
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PROJECT_SETTINGS_SET, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    /* A negative member keeps the stored value (NULL → COALESCE): the
     * statement names only what changes, so writers of different settings
     * never undo each other. */
    for (int i = 0; i < 3; i++) {
        if (values[i] < 0)
            kw_db_null(st, i + 2);
        else
            kw_db_int(st, i + 2, values[i] != 0);
    }
    return kw_db_exec(st, 1);
}
