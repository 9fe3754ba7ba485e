/* peerlimit.h: open connections per client address, counted across every gateway process.
 *
 * A client is keyed as the rate limiter keys it (ratelimit_client_key: IPv4 /32, IPv6 /64, an
 * IPv4-mapped address as its IPv4 address). The counts live in shared memory mapped by
 * peerlimit_new() before the processes fork: one table per process slot, which only that
 * process writes (plain atomic stores, no lock, no CAS), and which every process reads when it
 * decides. A client's count is the sum of its entries in all the tables.
 *
 * Why one table per process: a process that crashes leaves only its own table wrong; the
 * supervisor clears that table when it reaps the process (peerlimit_clear_slot) and the
 * replacement again when it attaches (peerlimit_attach), so no count leaks past a restart and
 * no lock can be left held. The price is that two processes deciding at the same
 * instant for the same client may each see the other's count one connection old: the limit can
 * be exceeded by at most processes - 1 connections, for as long as those connections live.
 *
 * Tables are fixed-size and set-associative (sets of 8 one-word entries, one cache line): a
 * check reads one cache line per process and allocates nothing. An entry is one 64-bit word,
 * a 48-bit tag of the client's hashed key and a 16-bit count, so a reader never sees a torn
 * entry. When a client's count returns to 0 its entry is freed. If every entry of a set is in
 * use, the connection is allowed but not counted (peerlimit_charge returns PEERLIMIT_UNTRACKED):
 * memory is bounded, and the gateway sizes each table at 4 entries per connection the process
 * may hold (server.c), so that a full set of 8 is rare; failing open there is safer than
 * refusing a client for another's hash. */
#ifndef ANTRE_GATEWAY_PEERLIMIT_H
#define ANTRE_GATEWAY_PEERLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct peerlimit; /* opaque */

/* Largest per-client limit a table can count (a 16-bit count per process). */
#define PEERLIMIT_MAX 65535

/* Results of peerlimit_charge. */
enum peerlimit_result {
    PEERLIMIT_CHARGED = 0,   /* counted: release it with peerlimit_release */
    PEERLIMIT_OVER = 1,      /* the client already holds MAX connections: nothing counted */
    PEERLIMIT_UNTRACKED = 2, /* not counted (not IP, or the client's set is full): allow it */
};

/* Map NPROCS (1..64) tables of at least CAPACITY entries each (rounded up to a power of two,
 * at least 8), shared with the processes forked afterwards, and draw the hash key. Call before
 * forking, off the event loop (getrandom may block early after boot). Returns the handle (free
 * with peerlimit_free), or NULL with errno set. */
struct peerlimit *peerlimit_new(int nprocs, size_t capacity);

/* Unmap PL in the calling process and free the handle. PL may be NULL. */
void peerlimit_free(struct peerlimit *pl);

/* Make this process slot SLOT (0..nprocs-1) of PL and clear that slot's table: whatever a
 * previous process in this slot (one that crashed) had counted is forgotten. */
void peerlimit_attach(struct peerlimit *pl, int slot);

/* Clear slot SLOT's table, from a process other than the one attached to it: the supervisor
 * calls it when that process has died, so that its counts are gone even before its
 * replacement attaches. */
void peerlimit_clear_slot(struct peerlimit *pl, int slot);

/* Count one connection of client KEY (ratelimit_client_key) if the client holds fewer than MAX
 * (1..PEERLIMIT_MAX) connections across all processes. See enum peerlimit_result. */
enum peerlimit_result peerlimit_charge(struct peerlimit *pl, uint64_t key, int max);

/* Forget one connection of client KEY that peerlimit_charge counted in this process. */
void peerlimit_release(struct peerlimit *pl, uint64_t key);

/* Connections of client KEY counted in all processes. */
int peerlimit_count(const struct peerlimit *pl, uint64_t key);

#endif
