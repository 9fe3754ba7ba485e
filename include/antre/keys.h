/* keys.h: every Redis key name antre uses is built here, and only here.
 *
 * All keys of one room share the hash tag {room}, so a room's keys live on one Redis Cluster
 * slot and its Lua scripts may touch them atomically. Names are `antre:{ROOM}:<what>`. */
#ifndef ANTRE_KEYS_H
#define ANTRE_KEYS_H

#include <stddef.h>
#include <stdint.h>

enum keys_room {
    KEYS_ROOM_CTL,       /* hash: controller state (head, frac, last, pending, credit, ...) */
    KEYS_ROOM_TAIL,      /* string: places handed out after opening (place = P + n) */
    KEYS_ROOM_PRE,       /* string: pre-queue tickets handed out (P once frozen) */
    KEYS_ROOM_ACTIVE,    /* zset: session id -> expiry (ms) */
    KEYS_ROOM_BATCHES,   /* zset: admission batches by first place */
    KEYS_ROOM_BATCHINFO, /* hash: first place -> "end:admitted_ms:redeemed" */
    KEYS_ROOM_LEFT,      /* zset: waiting places whose holders left */
    KEYS_ROOM_ENDED,     /* zset: session id -> expiry (ms) of sessions ended by leave */
    KEYS_ROOM__COUNT
};

#define KEYS_MAX 128

/* Write the name of key K of ROOM into BUF (KEYS_MAX bytes). Returns its length. */
int keys_room(char *buf, const char *room, enum keys_room k);

/* The redemption record of PLACE: "sid:expiry_ms", or "left". */
int keys_room_redeem(char *buf, const char *room, uint64_t place);

/* The applicant-binding bucket for the identifier hash H (32 bytes): a small hash keyed by the
 * first 2 bytes of H, whose field is written to FIELD (the next 10 bytes, hex; FIELD holds 21
 * bytes). Buckets keep ~15 entries per million places in Redis' compact listpack encoding. */
int keys_room_applicant(char *buf, const char *room, const uint8_t h[32], char field[21]);

/* Intake keys (registrations, uploads, the work streams) share the hash tag {intake} so that
 * one script can create a record, its dedupe key and its stream entry atomically. */
enum keys_intake {
    KEYS_STREAM_REGISTER, /* stream: registrations to forward downstream */
    KEYS_STREAM_UPLOAD,   /* stream: uploaded documents to check and store */
    KEYS_STREAM_VERIFY,   /* stream: one-time codes to send */
    KEYS_INTAKE__COUNT
};

/* The stream key of queue Q. */
int keys_stream(char *buf, enum keys_intake q);

/* The dead-letter stream of queue Q (job.h says what its entries hold). */
int keys_stream_dead(char *buf, enum keys_intake q);

/* Queue Q's retries waiting for their time (zset: stream entry id -> due Unix ms); the entries
 * stay pending in the stream meanwhile (worker/queue.c). */
int keys_queue_delayed(char *buf, enum keys_intake q);

/* Queue Q's drain-rate state (string: the GCRA theoretical arrival time, Unix ms), shared by
 * every worker process. */
int keys_queue_rate(char *buf, enum keys_intake q);

/* A registration's record (hash). The name ends with ID: intake.lua 'register' finds another
 * registration's record by swapping the id at the end of one it was given. */
int keys_registration(char *buf, const char *id);

/* The dedupe key of a NIK, from its HMAC in hex (64 digits): value = registration id. */
int keys_nik(char *buf, const char *nik_hmac_hex);

/* An Idempotency-Key record, scoped to OWNER. KEY is hashed by the caller (hex). */
int keys_idempotency(char *buf, const char *owner, const char *key_hash_hex);

/* An upload's record (hash). */
int keys_upload(char *buf, const char *id);

/* The spool-bytes budget that every gateway process shares (common/lua/spool.lua): a hash of
 * upload id -> bytes counted for it, and their sum in the field `total`. */
int keys_spool_bytes(char *buf);

/* The budget's leases: upload id -> Unix ms at which its reservation lapses (zset); an upload
 * whose job is queued has no lease (the worker gives its bytes back). */
int keys_spool_leases(char *buf);

/* A session's unfinished resumable uploads (zset: upload id -> expiry, Unix s); OWNER is the
 * session's owner (gate.h). */
int keys_tus_session(char *buf, const char *owner);

/* A verification's record (hash): one code sent to one contact (docs/design.md, "Verification
 * codes"). */
int keys_verification(char *buf, const char *id);

/* A send throttle of verification codes (hash: GCRA arrival times `next_ms`, `day_ms`), for
 * SCOPE "dest" (WHO: the HMAC in hex of a destination, never the address itself), "reg" (a
 * registration id), "rnik" (a NIK's HMAC in hex) or "raddr" (the HMAC in hex of a client
 * address). */
int keys_verify_throttle(char *buf, const char *scope, const char *who);

#endif
