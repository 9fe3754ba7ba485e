/* keys.c: Redis key names (see keys.h). */
#include "antre/keys.h"

#include "antre/codec.h"

#include <stdio.h>

static const char *const room_suffix[KEYS_ROOM__COUNT] = {
    [KEYS_ROOM_CTL] = "ctl",         [KEYS_ROOM_TAIL] = "tail",
    [KEYS_ROOM_PRE] = "pre",         [KEYS_ROOM_ACTIVE] = "active",
    [KEYS_ROOM_BATCHES] = "batches", [KEYS_ROOM_BATCHINFO] = "batchinfo",
    [KEYS_ROOM_LEFT] = "left",       [KEYS_ROOM_ENDED] = "ended",
};

int keys_room(char *buf, const char *room, enum keys_room k)
{
    return snprintf(buf, KEYS_MAX, "antre:{%s}:%s", room, room_suffix[k]);
}

int keys_room_redeem(char *buf, const char *room, uint64_t place)
{
    return snprintf(buf, KEYS_MAX, "antre:{%s}:rd:%llu", room, (unsigned long long)place);
}

int keys_room_applicant(char *buf, const char *room, const uint8_t h[32], char field[21])
{
    codec_hex_encode(h + 2, 10, field, 21);
    return snprintf(buf, KEYS_MAX, "antre:{%s}:app:%02x%02x", room, h[0], h[1]);
}

static const char *const stream_names[KEYS_INTAKE__COUNT] = {[KEYS_STREAM_REGISTER] = "register",
                                                             [KEYS_STREAM_UPLOAD] = "upload",
                                                             [KEYS_STREAM_VERIFY] = "verify"};

int keys_stream(char *buf, enum keys_intake q)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:q:%s", stream_names[q]);
}

int keys_stream_dead(char *buf, enum keys_intake q)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:dead:%s", stream_names[q]);
}

int keys_queue_delayed(char *buf, enum keys_intake q)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:delayed:%s", stream_names[q]);
}

int keys_queue_rate(char *buf, enum keys_intake q)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:rate:%s", stream_names[q]);
}

int keys_registration(char *buf, const char *id)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:reg:%s", id);
}

int keys_nik(char *buf, const char *nik_hmac_hex)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:nik:%s", nik_hmac_hex);
}

int keys_idempotency(char *buf, const char *owner, const char *key_hash_hex)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:idem:%s:%s", owner, key_hash_hex);
}

int keys_upload(char *buf, const char *id)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:upl:%s", id);
}

int keys_spool_bytes(char *buf) { return snprintf(buf, KEYS_MAX, "antre:{intake}:spool:bytes"); }

int keys_spool_leases(char *buf) { return snprintf(buf, KEYS_MAX, "antre:{intake}:spool:leases"); }

int keys_tus_session(char *buf, const char *owner)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:tus:%s", owner);
}

int keys_verification(char *buf, const char *id)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:ver:%s", id);
}

int keys_verify_throttle(char *buf, const char *scope, const char *who)
{
    return snprintf(buf, KEYS_MAX, "antre:{intake}:vthr:%s:%s", scope, who);
}
