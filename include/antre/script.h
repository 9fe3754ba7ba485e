/* script.h: calling an embedded Lua script on Redis by its SHA, loading it when Redis lacks it.
 *
 * EVALSHA is sent first (the script text does not travel on every call); on NOSCRIPT (a fresh
 * or restarted Redis) the same call is sent again as EVAL, which also caches the script, and
 * the caller's callback sees only the final reply. */
#ifndef ANTRE_SCRIPT_H
#define ANTRE_SCRIPT_H

#include <stddef.h>

#include "antre/rconn.h"

struct script {
    const char *src; /* borrowed: an embedded script (lua_scripts.h) */
    char sha[41];    /* hex SHA-1 of src */
};

/* Compute the SHA of SRC (borrowed for the life of S). */
void script_init(struct script *s, const char *src);

#define SCRIPT_MAX_ARGS 64

/* Run S with NKEYS keys and NARGS arguments (all C strings, copied). Same contract as
 * rconn_command_argv: 0 = CB will be called exactly once; -1 = refused at once (see
 * rconn_last_refusal), CB not called. */
int script_call(struct rconn *rc, const struct script *s, rconn_cb *cb, void *arg, int nkeys,
                const char *const *keys, int nargs, const char *const *args);

#endif
