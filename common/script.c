/* script.c: EVALSHA with a transparent EVAL fallback (see script.h). */
#include "antre/script.h"

#include "antre/codec.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void script_init(struct script *s, const char *src)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    s->src = src;
    SHA1((const unsigned char *)src, strlen(src), md);
    codec_hex_encode(md, sizeof md, s->sha, sizeof s->sha);
}

/* A call in flight: enough to resend it as EVAL. */
struct call {
    struct rconn *rc;
    const struct script *s;
    rconn_cb *cb;
    void *arg;
    int argc;
    char **argv;
    size_t *lens;
    int retried;
};

static void call_free(struct call *c)
{
    for (int i = 0; i < c->argc; i++) free(c->argv[i]);
    free(c->argv);
    free(c->lens);
    free(c);
}

static void on_reply(void *arg, const redisReply *reply, const char *err)
{
    struct call *c = arg;
    if (reply && reply->type == REDIS_REPLY_ERROR && !c->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* Redis does not know the script yet: send its text once. */
        c->retried = 1;
        free(c->argv[0]);
        free(c->argv[1]);
        c->argv[0] = strdup("EVAL");
        c->argv[1] = strdup(c->s->src);
        if (!c->argv[0] || !c->argv[1]) abort();
        c->lens[0] = 4;
        c->lens[1] = strlen(c->s->src);
        if (rconn_command_argv(c->rc, on_reply, c, c->argc, (const char **)c->argv, c->lens) == 0)
            return;
        c->cb(c->arg, NULL, "disconnected");
        call_free(c);
        return;
    }
    c->cb(c->arg, reply, err);
    call_free(c);
}

int script_call(struct rconn *rc, const struct script *s, rconn_cb *cb, void *arg, int nkeys,
                const char *const *keys, int nargs, const char *const *args)
{
    if (nkeys + nargs > SCRIPT_MAX_ARGS) return -1;
    struct call *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->rc = rc;
    c->s = s;
    c->cb = cb;
    c->arg = arg;
    c->argc = 3 + nkeys + nargs;
    c->argv = calloc((size_t)c->argc, sizeof *c->argv);
    c->lens = calloc((size_t)c->argc, sizeof *c->lens);
    if (!c->argv || !c->lens) abort();
    char nk[12];
    snprintf(nk, sizeof nk, "%d", nkeys);
    c->argv[0] = strdup("EVALSHA");
    c->argv[1] = strdup(s->sha);
    c->argv[2] = strdup(nk);
    for (int i = 0; i < nkeys; i++) c->argv[3 + i] = strdup(keys[i]);
    for (int i = 0; i < nargs; i++) c->argv[3 + nkeys + i] = strdup(args[i]);
    for (int i = 0; i < c->argc; i++) {
        if (!c->argv[i]) abort();
        c->lens[i] = strlen(c->argv[i]);
    }
    if (rconn_command_argv(rc, on_reply, c, c->argc, (const char **)c->argv, c->lens) < 0) {
        call_free(c);
        return -1;
    }
    return 0;
}
