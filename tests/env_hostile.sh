#!/usr/bin/env bash
# env_hostile.sh C_TEST - the suite must not depend on the caller's
# environment: runs one shell test (cli_test.sh) and one C test (the
# executable given, which starts a server, a bridge and Redis) with a set
# of hostile AFFILIATE_* variables exported, each of which breaks that
# test when it leaks in (a webhook secret the CLI would sign with, keys
# required, addresses and folders that do not exist or belong to another
# stack, settings that do not parse). Both must pass as they do in a
# clean environment (tests/clean_env.sh, tu_env_clean() in testutil.c).
set -u
SRC=${AFFILIATE_SOURCE_DIR:?}
ctest_bin=${1:?usage: env_hostile.sh C_TEST}
. "$SRC/tests/tap.sh"
# As env_hostile_pg: both tests start their own PostgreSQL.
. "$SRC/tests/backend.sh"
backend_check

export AFFILIATE_WEBHOOK_SECRET=hostile-secret-from-the-shell
export AFFILIATE_URL=tcp://127.0.0.1:1
export AFFILIATE_KEY=aff_9_hostile
export AFFILIATE_AUTH=on
export AFFILIATE_LISTEN=tcp://127.0.0.1:1
export AFFILIATE_BRIDGE_LISTEN=127.0.0.1:1
export AFFILIATE_DATA_DIR=/nonexistent/affiliate-hostile
export AFFILIATE_DB=/nonexistent/affiliate-hostile.db
export AFFILIATE_REDIS=127.0.0.1:1
export AFFILIATE_REDIS_TIMEOUT_MS=lots
export AFFILIATE_JOBS_URL=tcp://127.0.0.1:1
export AFFILIATE_RESULTS_URL=tcp://127.0.0.1:2
export AFFILIATE_WORKER_SECRET=short
export AFFILIATE_THREADS=none
export AFFILIATE_LOG_LEVEL=loud
export AFFILIATE_RATE_LIMIT=1/1
export AFFILIATE_RATE_LIMIT_ANON=1/1
export AFFILIATE_DB_MAX_PAGES=1
export AFFILIATE_WEBHOOK_REQUIRE_TIMESTAMP=1

# The variables are really there for whatever does not clean them.
check "the hostile variables are exported" \
	bash -c '[ "$AFFILIATE_AUTH" = on ] && [ -n "$AFFILIATE_WEBHOOK_SECRET" ]'

bash "$SRC/tests/cli_test.sh" >"${TMPDIR:-/tmp}/env_hostile_cli.$$" 2>&1
rc=$?
check "cli_test.sh passes under the hostile environment" [ "$rc" = 0 ]
[ "$rc" = 0 ] || grep -E "^not ok|passed," "${TMPDIR:-/tmp}/env_hostile_cli.$$"
rm -f "${TMPDIR:-/tmp}/env_hostile_cli.$$"

"$ctest_bin" >"${TMPDIR:-/tmp}/env_hostile_c.$$" 2>&1
rc=$?
check "$(basename "$ctest_bin") passes under the hostile environment" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -30 "${TMPDIR:-/tmp}/env_hostile_c.$$"
rm -f "${TMPDIR:-/tmp}/env_hostile_c.$$"

tap_done
