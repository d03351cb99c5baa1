/*
 * aff_signal.h - how every long-running binary here stops: SIGINT and
 * SIGTERM are blocked before any thread starts (so every thread inherits
 * the mask) and waited for in one place; SIGPIPE is ignored (a peer that
 * goes away is an error return, not a death).
 */
#ifndef AFF_SIGNAL_H
#define AFF_SIGNAL_H

#include <signal.h>

/* Call first in main, before any thread exists. */
void aff_signal_block(sigset_t *set);

/* Waits for SIGINT or SIGTERM; returns its name. */
const char *aff_signal_wait(const sigset_t *set);

#endif /* AFF_SIGNAL_H */
