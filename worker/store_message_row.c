/*
 * worker/store_message_row.c: one message as the store reads it from a row
 * (worker/store_impl.h), and the clearing of what reading it allocated.
 * Below both the messages and the publishing marks, which read messages.
 */
#include "worker/store_impl.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void wrk_message_clear(wrk_message_t *m)
{
    free(m->body);
    memset(m, 0, sizeof(*m));
}

void wrk_message_list_clear(wrk_message_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].body);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int wrk__read_message(wrk_db_stmt_t *st, wrk_message_t *m)
{
    memset(m, 0, sizeof(*m));
    m->id = wrk_db_int(st, 0);
    m->room_id = wrk_db_int(st, 1);
    m->user_id = wrk_db_int(st, 2);
    wrk__copy_text(st, 3, m->username, sizeof(m->username));
    m->body = wrk__dup_text(st, 4, &m->body_len);
    if (!m->body)
        return MC_ENOMEM;
    m->created_ms = wrk_db_int(st, 5);
    m->edited_ms = wrk_db_int(st, 6);
    m->deleted = (int)wrk_db_int(st, 7);
    return 0;
}
