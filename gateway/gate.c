/* gate.c: the typed view of a connection's per-request application context (see gate.h). */
#include "gate.h"

#include "conn.h"

_Static_assert(sizeof(struct gate_ctx) <= CONN_APP_BYTES,
               "struct gate_ctx must fit in a connection's application area");

struct gate_ctx *gate_ctx(struct conn *c) { return conn_app(c); }

const struct session *gate_session(const struct conn *c)
{
    return &((const struct gate_ctx *)conn_app_const(c))->session;
}
