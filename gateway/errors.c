/* errors.c: the gateway's error catalogue (see errors.h).
 *
 * One entry per condition. Where a call site knows more (a photo's size, which metadata key is
 * wrong) it may answer with a more precise message through reply_err_msg(); the code, status,
 * counter and Retry-After still come from here. docs/api.md's "Error catalogue" lists this
 * table and tests/unit/test_errors.c checks that it does. */
#include "errors.h"

#include <string.h>

#include "metrics.h"

#define NONE ERRORS_NO_REFUSAL

static const struct error_def table[ERR__COUNT] = {
    [ERR_BAD_REQUEST] = {"bad_request", 400, "Permintaan tidak dapat dibaca.",
                         "The request could not be parsed.", REFUSE_BAD_REQUEST, 0},
    [ERR_BAD_CONTENT_LENGTH] = {"bad_content_length", 400, "Header Content-Length tidak valid.",
                                "The Content-Length header is not a number.", REFUSE_BAD_REQUEST,
                                0},
    [ERR_CONFLICTING_LENGTH] = {"conflicting_length", 400,
                                "Permintaan memuat Content-Length dan Transfer-Encoding sekaligus.",
                                "The request has both Content-Length and Transfer-Encoding.",
                                REFUSE_SMUGGLING, 0},
    [ERR_CONFLICTING_CONTENT_LENGTH] = {"conflicting_content_length", 400,
                                        "Permintaan memuat lebih dari satu Content-Length.",
                                        "The request has more than one Content-Length header.",
                                        REFUSE_SMUGGLING, 0},
    [ERR_UNSUPPORTED_TRANSFER_ENCODING] = {"unsupported_transfer_encoding", 400,
                                           "Hanya Transfer-Encoding: chunked yang diterima.",
                                           "Only Transfer-Encoding: chunked is accepted.",
                                           REFUSE_SMUGGLING, 0},
    [ERR_INVALID_CHUNK] = {"invalid_chunk", 400,
                           "Pembingkaian chunked pada isi permintaan tidak valid.",
                           "The chunked framing of the request body is not valid.",
                           REFUSE_SMUGGLING, 0},
    [ERR_MISSING_HOST] = {"missing_host", 400, "Permintaan HTTP/1.1 wajib memuat header Host.",
                          "An HTTP/1.1 request must have a Host header.", REFUSE_BAD_REQUEST, 0},
    [ERR_INVALID_HOST] = {"invalid_host", 400, "Header Host tidak valid.",
                          "The Host header is not a valid host name or address.",
                          REFUSE_BAD_REQUEST, 0},
    [ERR_DUPLICATE_HEADER] = {"duplicate_header", 400,
                              "Header yang hanya boleh muncul sekali dikirim lebih dari sekali.",
                              "A header that may appear only once was sent more than once.",
                              REFUSE_SMUGGLING, 0},
    [ERR_HTTP_VERSION_NOT_SUPPORTED] = {"http_version_not_supported", 505,
                                        "Hanya HTTP/1.0 dan HTTP/1.1 yang didukung.",
                                        "Only HTTP/1.0 and HTTP/1.1 are supported.",
                                        REFUSE_BAD_REQUEST, 0},
    [ERR_NOT_FOUND] = {"not_found", 404, "Alamat ini tidak ada.",
                       "There is nothing at this address.", NONE, 0},
    [ERR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405,
                                "Metode ini tidak diizinkan untuk alamat ini; lihat header Allow.",
                                "This method is not allowed here; see the Allow header.", NONE, 0},
    [ERR_URI_TOO_LONG] = {"uri_too_long", 414, "Alamat permintaan terlalu panjang.",
                          "The request address is too long.", REFUSE_URI_TOO_LONG, 0},
    [ERR_HEADERS_TOO_LARGE] = {"headers_too_large", 431, "Header permintaan terlalu besar.",
                               "The request headers are too large.", REFUSE_HEADERS_TOO_LARGE, 0},
    [ERR_TOO_MANY_HEADERS] = {"too_many_headers", 431, "Terlalu banyak header dalam permintaan.",
                              "The request has too many headers.", REFUSE_HEADERS_TOO_LARGE, 0},
    [ERR_BODY_TOO_LARGE] = {"body_too_large", 413,
                            "Isi permintaan melebihi batas ukuran untuk alamat ini.",
                            "The request body is larger than this address accepts.",
                            REFUSE_BODY_TOO_LARGE, 0},
    [ERR_LENGTH_REQUIRED] = {"length_required", 411,
                             "Sertakan Content-Length atau gunakan Transfer-Encoding: chunked.",
                             "Send a Content-Length or use Transfer-Encoding: chunked.", NONE, 0},
    [ERR_EXPECTATION_FAILED] = {"expectation_failed", 417, "Nilai header Expect tidak didukung.",
                                "The Expect header value is not supported.", NONE, 0},
    /* Counted as header_timeout; conn.c names body_timeout when the body was late. */
    [ERR_REQUEST_TIMEOUT] = {"request_timeout", 408,
                             "Permintaan terlalu lama dikirim; silakan coba lagi.",
                             "The request took too long to arrive; please try again.",
                             REFUSE_HEADER_TIMEOUT, 0},
    [ERR_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415,
                                    "Jenis isi permintaan ini tidak diterima di alamat ini.",
                                    "This address does not take this type of content.", NONE, 0},
    [ERR_INVALID_JSON] = {"invalid_json", 400, "Isi permintaan bukan objek JSON yang valid.",
                          "The request body is not a valid JSON object.", NONE, 0},
    [ERR_INVALID_FIELD] = {"invalid_field", 422, "Isian ini tidak valid.",
                           "This field is not valid.", NONE, 0},

    [ERR_RATE_LIMITED] = {"rate_limited", 429,
                          "Terlalu banyak permintaan dari alamat Anda; tunggu sebentar lalu "
                          "coba lagi.",
                          "Too many requests from your address; wait a moment and try again.",
                          REFUSE_RATE_LIMITED, 1},
    [ERR_TOO_MANY_CONNECTIONS] = {"too_many_connections", 503,
                                  "Server sedang penuh; silakan coba lagi sebentar lagi.",
                                  "The server is full right now; please try again shortly.",
                                  REFUSE_MAX_CONNECTIONS, 1},
    [ERR_TOO_MANY_CONNECTIONS_PER_IP] = {"too_many_connections_per_ip", 503,
                                         "Terlalu banyak koneksi dari alamat Anda; tutup sebagian "
                                         "lalu coba lagi.",
                                         "Too many connections from your address; close some and "
                                         "try again.",
                                         REFUSE_PER_IP_CONNECTIONS, 1},
    [ERR_SHUTTING_DOWN] = {"shutting_down", 503, "Server sedang dimulai ulang; silakan coba lagi.",
                           "The server is restarting; please try again.", REFUSE_DRAINING, 1},
    [ERR_REDIS_UNAVAILABLE] = {"redis_unavailable", 503,
                               "Layanan sedang tidak siap; silakan coba lagi sebentar lagi.",
                               "The service is not ready; please try again shortly.",
                               REFUSE_REDIS_DOWN, 2},
    [ERR_OVERLOADED] = {"overloaded", 503, "Server sedang sibuk; silakan coba lagi sebentar lagi.",
                        "The server is busy; please try again shortly.", REFUSE_REDIS_BUDGET, 1},
    [ERR_UPLOAD_BUDGET] = {"upload_budget", 503,
                           "Terlalu banyak unggahan sedang berjalan; coba lagi dalam beberapa "
                           "detik.",
                           "Too many uploads are in progress; try again in a few seconds.",
                           REFUSE_UPLOAD_BUDGET, 5},
    [ERR_INTERNAL_ERROR] = {"internal_error", 500,
                            "Terjadi kesalahan pada server kami; silakan coba lagi.",
                            "Something went wrong on our side; please try again.", NONE, 0},

    [ERR_UNAUTHORIZED] = {"unauthorized", 401, "Token admin diperlukan.",
                          "An admin bearer token is required.", NONE, 0},

    [ERR_UNKNOWN_ROOM] = {"unknown_room", 404, "Antrean ini tidak ada.", "There is no such queue.",
                          NONE, 0},
    [ERR_ROOM_NOT_OPEN] = {"room_not_open", 403, "Antrean belum dibuka.",
                           "The queue is not open yet.", NONE, 0},
    [ERR_ROOM_CLOSED] = {"room_closed", 403, "Pendaftaran gelombang ini sudah ditutup.",
                         "Registration for this wave has closed.", NONE, 0},
    [ERR_ROOM_UNAVAILABLE] = {"room_unavailable", 503,
                              "Antrean sedang ditutup sementara; silakan coba lagi nanti.",
                              "The queue is closed for a while; please try again later.", NONE, 60},
    [ERR_CROSS_SITE] = {"cross_site", 403, "Permintaan dari situs lain ditolak.",
                        "Requests from other sites are refused.", NONE, 0},
    [ERR_INVALID_TICKET] = {"invalid_ticket", 401, "Tiket tidak valid untuk antrean ini.",
                            "The ticket is not valid for this queue.", NONE, 0},
    [ERR_TICKET_EXPIRED] = {"ticket_expired", 410,
                            "Giliran Anda sudah lewat dan tidak dipakai dalam batas waktu; "
                            "silakan antre lagi.",
                            "Your turn came and was not used in time; please join the queue "
                            "again.",
                            NONE, 0},
    [ERR_NOT_ADMITTED] = {"not_admitted", 401,
                          "Anda belum mendapat giliran; masuk antrean terlebih dahulu.",
                          "You have not been admitted yet; join the queue first.", NONE, 0},
    [ERR_SESSION_EXPIRED] = {"session_expired", 401,
                             "Sesi Anda sudah berakhir; silakan antre lagi.",
                             "Your session has ended; please join the queue again.", NONE, 0},
    [ERR_SESSION_ENDED] = {"session_ended", 410, "Sesi Anda untuk gelombang ini sudah berakhir.",
                           "Your session for this wave has ended.", NONE, 0},
    /* The message of most refusals is the precise one of wroom_join.c (by "reason"). */
    [ERR_INVALID_APPLICANT_TOKEN] = {"invalid_applicant_token", 400,
                                     "Token pendaftar tidak valid; masuk lagi lewat situs program "
                                     "untuk mendapatkan token baru.",
                                     "The applicant token is not valid; sign in again on the "
                                     "programme's site to get a new one.",
                                     NONE, 0},
    [ERR_APPLICANT_BINDING_OFF] = {"applicant_binding_off", 400,
                                   "Antrean ini tidak mengikat pendaftar (tidak ada kunci token "
                                   "pendaftar); masuk antrean tanpa \"applicant\".",
                                   "This queue does not bind applicants (no applicant token key "
                                   "is configured); join without \"applicant\".",
                                   NONE, 0},

    /* Built ahead by registration.c (the answer is stored for idempotent replays). */
    [ERR_DUPLICATE_NIK] = {"duplicate_nik", 409, "Pendaftaran dengan NIK ini sudah ada.",
                           "A registration with this NIK already exists.", NONE, 0},
    [ERR_NOT_OWNER] = {"not_owner", 403,
                       "Ini bukan milik sesi Anda; buka dari sesi yang membuatnya.",
                       "This does not belong to your session; use the session that created it.",
                       NONE, 0},
    [ERR_UNKNOWN_REGISTRATION] = {"unknown_registration", 404, "Pendaftaran ini tidak ditemukan.",
                                  "There is no such registration.", NONE, 0},
    [ERR_INVALID_IDEMPOTENCY_KEY] = {"invalid_idempotency_key", 400,
                                     "Idempotency-Key harus 1-128 karakter.",
                                     "Idempotency-Key must be 1-128 characters.", NONE, 0},
    [ERR_IDEMPOTENCY_IN_FLIGHT] = {"idempotency_in_flight", 409,
                                   "Permintaan dengan Idempotency-Key ini masih diproses; tunggu "
                                   "sebentar lalu ulangi.",
                                   "A request with this Idempotency-Key is still being handled; "
                                   "wait a moment and retry.",
                                   NONE, 0},
    [ERR_IDEMPOTENCY_KEY_REUSED] = {"idempotency_key_reused", 422,
                                    "Idempotency-Key ini sudah dipakai untuk data yang berbeda; "
                                    "gunakan kunci baru.",
                                    "This Idempotency-Key was used with a different body; use a "
                                    "new key.",
                                    NONE, 0},

    /* Verification codes (gateway/verify*.c); the 429s carry the computed wait. */
    [ERR_RESEND_TOO_SOON] = {"resend_too_soon", 429,
                             "Kode baru saja dikirim; tunggu sebentar sebelum meminta lagi.",
                             "A code was sent a moment ago; wait before asking for another.", NONE,
                             60},
    [ERR_SEND_LIMIT] = {"send_limit", 429,
                        "Batas pengiriman kode untuk hari ini tercapai; coba lagi nanti.",
                        "The limit of codes for today is reached; try again later.", NONE, 3600},
    [ERR_UNKNOWN_VERIFICATION] = {"unknown_verification", 404,
                                  "Kode verifikasi ini tidak ditemukan untuk sesi Anda; minta kode "
                                  "baru.",
                                  "There is no such verification for your session; ask for a new "
                                  "code.",
                                  NONE, 0},
    [ERR_WRONG_CODE] = {"wrong_code", 422, "Kode salah; periksa lalu coba lagi.",
                        "The code is wrong; check it and try again.", NONE, 0},
    [ERR_TOO_MANY_ATTEMPTS] = {"too_many_attempts", 429,
                               "Terlalu banyak kode salah, jadi kode ini dibatalkan; minta kode "
                               "baru.",
                               "Too many wrong codes, so this code was cancelled; ask for a new "
                               "one.",
                               NONE, 60},
    [ERR_CODE_EXPIRED] = {"code_expired", 410, "Kode ini sudah kedaluwarsa; minta kode baru.",
                          "This code has expired; ask for a new one.", NONE, 0},
    [ERR_CODE_REPLACED] = {"code_replaced", 410,
                           "Kode ini sudah diganti dengan kode yang lebih baru; pakai kode "
                           "terakhir yang Anda terima.",
                           "This code was replaced by a newer one; use the last code you "
                           "received.",
                           NONE, 0},
    [ERR_CODE_NOT_SENT] = {"code_not_sent", 409,
                           "Kode ini belum terkirim; tunggu pesannya, atau minta kode baru.",
                           "This code has not been sent yet; wait for the message, or ask for a "
                           "new code.",
                           NONE, 0},
    [ERR_ALREADY_VERIFIED] = {"already_verified", 409, "Kode ini sudah dipakai dan terverifikasi.",
                              "This code was already used and verified.", NONE, 0},

    [ERR_UNKNOWN_DOCUMENT] = {"unknown_document", 404,
                              "Jenis dokumen tidak dikenal; gunakan ktp atau selfie.",
                              "Unknown document kind; use ktp or selfie.", NONE, 0},
    [ERR_UNKNOWN_UPLOAD] = {"unknown_upload", 404,
                            "Unggahan ini tidak ditemukan; periksa alamatnya atau unggah foto "
                            "lagi.",
                            "There is no such upload; check the address or upload the photo "
                            "again.",
                            NONE, 0},
    [ERR_FILE_TOO_LARGE] = {"file_too_large", 413,
                            "Foto melebihi batas ukuran; kecilkan foto itu lalu unggah lagi.",
                            "The photo is over the size limit; make it smaller and upload again.",
                            REFUSE_BODY_TOO_LARGE, 0},
    [ERR_UPLOAD_EXPIRED] = {"upload_expired", 410,
                            "Unggahan ini sudah kedaluwarsa dan dihapus; mulai unggah berkas dari "
                            "awal.",
                            "This upload expired and was removed; start uploading the file "
                            "again.",
                            NONE, 0},
    [ERR_UPLOAD_LOCKED] = {"upload_locked", 409,
                           "Unggahan ini sedang menerima data dari permintaan lain; coba lagi "
                           "sebentar lagi.",
                           "Another request is writing to this upload; try again in a moment.",
                           NONE, 0},
    [ERR_UPLOAD_COMPLETE] = {"upload_complete", 409,
                             "Unggahan ini sudah lengkap dan sedang diperiksa; lihat statusnya.",
                             "This upload is complete and being checked; see its status.", NONE, 0},
    [ERR_UPLOAD_FINISHING] = {"upload_finishing", 503,
                              "Unggahan ini sedang diselesaikan; tanyakan lagi sebentar lagi.",
                              "This upload is being finished; ask again in a moment.", NONE, 1},
    [ERR_TOO_MANY_UPLOADS] = {"too_many_uploads", 409,
                              "Anda punya terlalu banyak unggahan yang belum selesai; selesaikan "
                              "atau batalkan salah satunya dulu.",
                              "You have too many unfinished uploads; finish or cancel one of them "
                              "first.",
                              NONE, 0},
    [ERR_TUS_VERSION_UNSUPPORTED] = {"tus_version_unsupported", 412,
                                     "Versi protokol tus tidak didukung; kirim header "
                                     "Tus-Resumable: 1.0.0.",
                                     "This tus protocol version is not supported; send "
                                     "Tus-Resumable: 1.0.0.",
                                     NONE, 0},
    [ERR_BODY_NOT_ACCEPTED] = {"body_not_accepted", 400,
                               "Permintaan ini tidak boleh berisi data; kirim isi berkas dengan "
                               "PATCH.",
                               "This request takes no body; send the file's bytes with PATCH.",
                               NONE, 0},
    [ERR_INVALID_METADATA] = {"invalid_metadata", 400, "Upload-Metadata tidak valid.",
                              "Upload-Metadata is not valid.", NONE, 0},
    [ERR_DEFER_LENGTH_UNSUPPORTED] = {"defer_length_unsupported", 400,
                                      "Ukuran berkas harus diketahui di awal; kirim Upload-Length.",
                                      "The file's size must be known at the start; send "
                                      "Upload-Length.",
                                      NONE, 0},
    [ERR_UPLOAD_LENGTH_REQUIRED] = {"upload_length_required", 400,
                                    "Sertakan header Upload-Length (ukuran berkas dalam byte).",
                                    "Send the Upload-Length header (the file's size in bytes).",
                                    NONE, 0},
    [ERR_INVALID_UPLOAD_LENGTH] = {"invalid_upload_length", 400,
                                   "Upload-Length harus berupa ukuran berkas dalam byte, lebih "
                                   "dari 0.",
                                   "Upload-Length must be the file's size in bytes, more than 0.",
                                   NONE, 0},
    [ERR_INVALID_UPLOAD_OFFSET] = {"invalid_upload_offset", 400,
                                   "Sertakan Upload-Offset: posisi byte tempat potongan ini "
                                   "dimulai.",
                                   "Send Upload-Offset: the byte position where this chunk "
                                   "starts.",
                                   NONE, 0},
    [ERR_OFFSET_MISMATCH] = {"offset_mismatch", 409,
                             "Upload-Offset tidak cocok dengan data yang sudah diterima; tanyakan "
                             "posisinya dengan HEAD lalu lanjutkan dari sana.",
                             "Upload-Offset does not match the bytes received; ask for the offset "
                             "with HEAD and continue from there.",
                             NONE, 0},
    [ERR_UPLOAD_LENGTH_EXCEEDED] = {"upload_length_exceeded", 413,
                                    "Data yang dikirim melebihi Upload-Length berkas ini.",
                                    "The bytes sent go past this file's Upload-Length.", NONE, 0},
    [ERR_CHECKSUM_ALGORITHM_UNSUPPORTED] = {"checksum_algorithm_unsupported", 400,
                                            "Algoritma checksum tidak didukung; gunakan sha1, md5 "
                                            "atau sha256.",
                                            "This checksum algorithm is not supported; use sha1, "
                                            "md5 or sha256.",
                                            NONE, 0},
    [ERR_INVALID_CHECKSUM] = {"invalid_checksum", 400,
                              "Upload-Checksum harus berupa nama algoritma dan hash dalam Base64.",
                              "Upload-Checksum must be an algorithm name and a Base64 hash.", NONE,
                              0},
    [ERR_CHECKSUM_MISMATCH] = {"checksum_mismatch", 460,
                               "Checksum potongan ini tidak cocok, jadi potongan ini dibuang; "
                               "kirim ulang dari posisi yang sama.",
                               "This chunk's checksum does not match, so the chunk was discarded; "
                               "send it again from the same offset.",
                               NONE, 0},
};

size_t errors_count(void) { return ERR__COUNT; }

const struct error_def *errors_at(size_t i) { return i < ERR__COUNT ? &table[i] : NULL; }

const struct error_def *errors_find(const char *code)
{
    if (!code) return NULL;
    for (size_t i = 0; i < ERR__COUNT; i++)
        if (table[i].code && strcmp(table[i].code, code) == 0) return &table[i];
    return NULL;
}
