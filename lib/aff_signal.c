/* aff_signal.c - see aff_signal.h. */
#include "aff_signal.h"

#include <pthread.h>

void
aff_signal_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

const char *
aff_signal_wait(const sigset_t *set)
{
	int sig = 0;

	while (sigwait(set, &sig) != 0)
		;
	return (sig == SIGINT ? "SIGINT" : "SIGTERM");
}
