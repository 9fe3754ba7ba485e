/* test_job.c: unit tests of the job contract (common/job.c): entries built and parsed back,
 * refusal of missing, repeated, unknown, oversized and malformed fields, idempotency ids, stream
 * keys and the dead-letter format. */
#include "antre/job.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "antre/keys.h"

#define UID "0123456789abcdef0123456789abcdef"
#define RID "fedcba9876543210fedcba9876543210"

/* Parse FV (NUL-terminated strings, N items) as an entry of Q. */
static int parse(enum job_queue q, const char **fv, size_t n, struct job *j, char *err)
{
    size_t lens[32];
    for (size_t i = 0; i < n; i++) lens[i] = strlen(fv[i]);
    return job_parse(q, fv, lens, n, j, err, 256);
}

static struct job upload_job(void)
{
    struct job j = {.queue = JOB_UPLOAD};
    strcpy(j.upload_id, UID);
    strcpy(j.registration_id, RID);
    strcpy(j.kind, "selfie");
    return j;
}

Test(job, queue_names_and_keys)
{
    cr_assert_str_eq(job_queue_name(JOB_UPLOAD), "upload");
    cr_assert_str_eq(job_queue_name(JOB_REGISTER), "register");
    cr_assert_str_eq(job_queue_name(JOB_VERIFY), "verify");
    cr_assert_null(job_queue_name(JOB__QUEUES));
    enum job_queue q;
    cr_assert_eq(job_queue_from_name("register", 8, &q), 0);
    cr_assert_eq(q, JOB_REGISTER);
    cr_assert_eq(job_queue_from_name("registerx", 8, &q), 0); /* LEN bytes only */
    cr_assert_eq(job_queue_from_name("regist", 6, &q), -1);
    cr_assert_eq(job_queue_from_name("Upload", 6, &q), -1);
    char k[KEYS_MAX];
    job_stream_key(k, JOB_UPLOAD);
    cr_assert_str_eq(k, "antre:{intake}:q:upload"); /* what the system tests read */
    job_stream_key(k, JOB_REGISTER);
    cr_assert_str_eq(k, "antre:{intake}:q:register");
    job_dead_key(k, JOB_VERIFY);
    cr_assert_str_eq(k, "antre:{intake}:dead:verify");
    cr_assert_str_eq(JOB_GROUP, "workers");
}

Test(job, build_then_parse_round_trip)
{
    char err[256];
    struct job in[3] = {upload_job(), {.queue = JOB_REGISTER}, {.queue = JOB_VERIFY}};
    strcpy(in[1].registration_id, RID);
    strcpy(in[2].verification_id, UID);
    strcpy(in[2].registration_id, RID);
    strcpy(in[2].channel, "sms");
    static const int items[3] = {6, 2, 6};
    for (int i = 0; i < 3; i++) {
        const char *fv[8];
        int n = job_fields(&in[i], fv, 8, err, sizeof err);
        cr_assert_eq(n, items[i], "%d: %d %s", i, n, err);
        struct job out;
        cr_assert_eq(parse(in[i].queue, fv, (size_t)n, &out, err), 0, "%d: %s", i, err);
        cr_assert_eq(memcmp(&in[i], &out, sizeof out), 0, "%d", i);
    }
    /* The names are the contract's. */
    const char *fv[8];
    job_fields(&in[0], fv, 8, err, sizeof err);
    cr_assert_str_eq(fv[0], "upload_id");
    cr_assert_str_eq(fv[1], UID);
    cr_assert_str_eq(fv[2], "registration_id");
    cr_assert_str_eq(fv[4], "kind");
    cr_assert_str_eq(fv[5], "selfie");
}

Test(job, parse_in_any_order_and_without_nul)
{
    /* As an XREADGROUP reply gives them: lengths, no NUL after each value. */
    const char buf[] = "kindktpupload_id" UID "registration_id" RID;
    const char *fv[6] = {buf, buf + 4, buf + 7, buf + 16, buf + 48, buf + 63};
    size_t lens[6] = {4, 3, 9, 32, 15, 32};
    struct job j;
    char err[256];
    cr_assert_eq(job_parse(JOB_UPLOAD, fv, lens, 6, &j, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(j.kind, "ktp");
    cr_assert_str_eq(j.upload_id, UID);
    cr_assert_str_eq(j.registration_id, RID);
}

Test(job, argv_for_the_script)
{
    struct job j = upload_job();
    const char *out[JOB_ARGV_MAX];
    char count[4], err[256];
    cr_assert_eq(job_argv(&j, count, out, err, sizeof err), 7);
    cr_assert_str_eq(out[0], "6");
    cr_assert_str_eq(out[1], "upload_id");
    cr_assert_str_eq(out[6], "selfie");
}

Test(job, build_refuses_invalid_jobs)
{
    char err[256];
    const char *fv[8];
    struct job j = upload_job();
    j.kind[0] = 0;
    cr_assert_eq(job_fields(&j, fv, 8, err, sizeof err), -1);
    cr_assert(strstr(err, "kind"), "%s", err);
    j = upload_job();
    j.upload_id[5] = 'G';
    cr_assert_eq(job_fields(&j, fv, 8, err, sizeof err), -1);
    j = upload_job();
    cr_assert_eq(job_fields(&j, fv, 5, err, sizeof err), -1); /* no room */
    j.queue = JOB__QUEUES;
    cr_assert_eq(job_fields(&j, fv, 8, err, sizeof err), -1);
    struct job v = {.queue = JOB_VERIFY};
    strcpy(v.verification_id, UID);
    strcpy(v.registration_id, RID);
    strcpy(v.channel, "phone"); /* the API's channels are email and sms */
    cr_assert_eq(job_fields(&v, fv, 8, err, sizeof err), -1);
}

Test(job, parse_refuses_missing_repeated_unknown_and_bad_fields)
{
    struct job j;
    char err[256];
    const char *missing[] = {"upload_id", UID, "kind", "ktp"};
    cr_assert_eq(parse(JOB_UPLOAD, missing, 4, &j, err), -1);
    cr_assert(strstr(err, "missing registration_id"), "%s", err);
    const char *twice[] = {"registration_id", RID, "registration_id", RID};
    cr_assert_eq(parse(JOB_REGISTER, twice, 4, &j, err), -1);
    cr_assert(strstr(err, "twice"), "%s", err);
    const char *unknown[] = {"registration_id", RID, "path", "/tmp/x"};
    cr_assert_eq(parse(JOB_REGISTER, unknown, 4, &j, err), -1);
    cr_assert(strstr(err, "unknown field path"), "%s", err);
    /* A field of another queue is unknown here. */
    const char *other[] = {"registration_id", RID, "kind", "ktp"};
    cr_assert_eq(parse(JOB_REGISTER, other, 4, &j, err), -1);
    const char *odd[] = {"registration_id", RID, "kind"};
    cr_assert_eq(parse(JOB_REGISTER, odd, 3, &j, err), -1);
    const char *empty[] = {NULL};
    cr_assert_eq(parse(JOB_REGISTER, empty, 0, &j, err), -1);
    /* Values: too long, wrong format, a NUL inside. */
    char big[4096];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    const char *oversized[] = {"registration_id", big};
    cr_assert_eq(parse(JOB_REGISTER, oversized, 2, &j, err), -1);
    const char *upper[] = {"registration_id", "FEDCBA9876543210FEDCBA9876543210"};
    cr_assert_eq(parse(JOB_REGISTER, upper, 2, &j, err), -1);
    const char *short_id[] = {"registration_id", "fedcba98"};
    cr_assert_eq(parse(JOB_REGISTER, short_id, 2, &j, err), -1);
    const char *fv[] = {"upload_id", UID, "registration_id", RID, "kind", "ktp\0x"};
    size_t lens[] = {9, 32, 15, 32, 4, 5};
    cr_assert_eq(job_parse(JOB_UPLOAD, fv, lens, 6, &j, err, sizeof err), -1);
    const char *name_nul[] = {"kind\0", "ktp"};
    size_t lens2[] = {5, 3};
    cr_assert_eq(job_parse(JOB_UPLOAD, name_nul, lens2, 2, &j, err, sizeof err), -1);
    cr_assert_eq(parse(JOB__QUEUES, other, 4, &j, err), -1);
}

Test(job, idempotency_ids)
{
    char buf[JOB_ID_LEN + 8];
    struct job u = upload_job();
    cr_assert_eq(job_idempotency_id(&u, buf, sizeof buf), JOB_ID_LEN);
    cr_assert_str_eq(buf, UID);
    struct job r = {.queue = JOB_REGISTER};
    strcpy(r.registration_id, RID);
    job_idempotency_id(&r, buf, sizeof buf);
    cr_assert_str_eq(buf, RID);
    struct job v = {.queue = JOB_VERIFY};
    strcpy(v.verification_id, UID);
    strcpy(v.registration_id, RID);
    strcpy(v.channel, "email");
    job_idempotency_id(&v, buf, sizeof buf);
    cr_assert_str_eq(buf, UID);
    cr_assert_eq(job_idempotency_id(&u, buf, JOB_ID_LEN), -1); /* no room for the NUL */
}

Test(job, dead_letter_round_trip)
{
    struct job_dead d = {.job = upload_job(), .attempts = 5, .failed_at_ms = 1733530000123};
    strcpy(d.original_id, "1733530000000-7");
    strcpy(d.last_error, "store: disk full");
    char nums[2][24], err[256];
    const char *fv[16];
    int n = job_dead_fields(&d, nums, fv, 16, err, sizeof err);
    cr_assert_eq(n, 14, "%s", err);
    cr_assert_str_eq(fv[0], "original_id");
    cr_assert_str_eq(fv[3], "5");
    cr_assert_str_eq(fv[7], "1733530000123");
    cr_assert_str_eq(fv[8], "upload_id");
    size_t lens[16];
    for (int i = 0; i < n; i++) lens[i] = strlen(fv[i]);
    struct job_dead back;
    cr_assert_eq(job_dead_parse(JOB_UPLOAD, fv, lens, (size_t)n, &back, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(memcmp(&d, &back, sizeof d), 0);
    /* The job in a dead letter parses like the original entry, its own fields aside. */
    struct job j;
    cr_assert_eq(job_parse(JOB_UPLOAD, fv + 8, lens + 8, 6, &j, err, sizeof err), 0);
    cr_assert_eq(job_parse(JOB_UPLOAD, fv, lens, (size_t)n, &j, err, sizeof err), -1);
}

Test(job, dead_letter_refusals)
{
    struct job_dead d = {.job = upload_job(), .attempts = 1};
    strcpy(d.original_id, "not-an-id");
    char nums[2][24], err[256];
    const char *fv[16];
    cr_assert_eq(job_dead_fields(&d, nums, fv, 16, err, sizeof err), -1);
    strcpy(d.original_id, "1-0");
    cr_assert_eq(job_dead_fields(&d, nums, fv, 8, err, sizeof err), -1); /* no room for the job */
    int n = job_dead_fields(&d, nums, fv, 16, err, sizeof err);
    cr_assert_eq(n, 14);
    size_t lens[16];
    for (int i = 0; i < n; i++) lens[i] = strlen(fv[i]);
    struct job_dead back;
    /* Without last_error: missing. */
    const char *cut[12];
    size_t cutl[12];
    int m = 0;
    for (int i = 0; i < n; i += 2) {
        if (!strcmp(fv[i], "last_error")) continue;
        cut[m] = fv[i], cutl[m++] = lens[i];
        cut[m] = fv[i + 1], cutl[m++] = lens[i + 1];
    }
    cr_assert_eq(job_dead_parse(JOB_UPLOAD, cut, cutl, (size_t)m, &back, err, sizeof err), -1);
    cr_assert(strstr(err, "missing last_error"), "%s", err);
    /* A last_error over JOB_ERROR_MAX, attempts not a number. */
    char big[JOB_ERROR_MAX + 2];
    memset(big, 'e', sizeof big - 1);
    big[sizeof big - 1] = 0;
    fv[5] = big;
    lens[5] = strlen(big);
    cr_assert_eq(job_dead_parse(JOB_UPLOAD, fv, lens, (size_t)n, &back, err, sizeof err), -1);
    fv[5] = "";
    lens[5] = 0;
    cr_assert_eq(job_dead_parse(JOB_UPLOAD, fv, lens, (size_t)n, &back, err, sizeof err), 0);
    fv[3] = "5x";
    lens[3] = 2;
    cr_assert_eq(job_dead_parse(JOB_UPLOAD, fv, lens, (size_t)n, &back, err, sizeof err), -1);
    fv[3] = "99999999999";
    lens[3] = 11;
    cr_assert_eq(job_dead_parse(JOB_UPLOAD, fv, lens, (size_t)n, &back, err, sizeof err), -1);
}
