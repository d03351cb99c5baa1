#!/usr/bin/env bash
# dead_jobs_test.sh - dead jobs as an operator handles them, over the real
# binaries (affiliate-server with keys required, affiliate-bridge on a
# free loopback port, affiliate-worker, the affiliate CLI): a worker whose
# every review fails (--fail-percent 100) makes three jobs dead after
# --job-attempts 2, their applications rejected; `affiliate jobs list
# --state dead` and GET /jobs?state=dead show each with its last error;
# one is retried with `affiliate jobs retry ID`, one with POST
# /jobs/{id}/retry, the last with POST /jobs/retry-dead (then `jobs retry
# --all-dead` finds none); their applications are pending again and a
# healthy worker approves all of them. A job that is not dead is refused
# (FAILED_PRECONDITION: 400, CLI exit 1), an unknown one is 404, an
# editor's key 403 and no key 401, on every route. On SQLite, and as
# test_dead_jobs_pg on PostgreSQL (tests/backend.sh).
set -u
. "$(dirname "$0")/clean_env.sh"
BIN=${AFFILIATE_BIN_DIR:?}
work=$(mktemp -d /tmp/affiliate-deadjobs-XXXXXX)
url="ipc://$work/rpc.sock"
BACKEND_DATA_DIR=$work/data # backend_sql reads the SQLite file there
pids=()
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/backend.sh"

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	# Only these: a bare wait would wait for PostgreSQL too (tests/pg.sh).
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	backend_stop
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
backend_start || { not_ok "the test's PostgreSQL starts"; tap_done; exit; }

http_port=$(free_port)
B="http://127.0.0.1:$http_port"

cli() { # cli KEY ARGS...: output in $work/out, exit status returned
	local key=$1
	shift
	AFFILIATE_KEY=$key "$BIN/affiliate" --url "$url" "$@" >"$work/out" 2>"$work/err"
}
http() { # http KEY METHOD PATH: the status; the body in $work/body
	local auth=()
	[ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
	curl -s -o "$work/body" -w '%{http_code}' -X "$2" "${auth[@]}" "$B$3"
}
start_worker() { # start_worker FAIL_PERCENT: its pid in $worker_pid
	"$BIN/affiliate-worker" --jobs "ipc://$work/jobs.sock" \
		--results "ipc://$work/results.sock" --data-dir "$work/data" \
		--review-delay 0 --fail-percent "$1" >>"$work/worker.log" 2>&1 &
	worker_pid=$!
	pids+=($worker_pid)
}
app_status() { # app_status ID: the application's status, as the admin reads it
	cli "$admin" applications get "$1" && jq -r .status "$work/out"
}
wait_status() { # wait_status ID STATUS: up to 10 s
	for _ in $(seq 1 200); do
		[ "$(app_status "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	echo "# application $1 is $(app_status "$1"), not $2" >&2
	return 1
}

"$BIN/affiliate-server" --data-dir "$work/data" --create-admin-key >"$work/admin" 2>"$work/create.log"
admin=$(cat "$work/admin")
AFFILIATE_AUTH=on "$BIN/affiliate-server" --listen "$url" --data-dir "$work/data" \
	--redis off --jobs "ipc://$work/jobs.sock" --results "ipc://$work/results.sock" \
	--job-attempts 2 --job-backoff 20 >"$work/server.log" 2>&1 &
pids+=($!)
wait_for "$work/server.log" "server: ready" || exit 1
"$BIN/affiliate-bridge" --listen "127.0.0.1:$http_port" --server "$url" \
	>"$work/bridge.log" 2>&1 &
pids+=($!)
wait_for "$work/bridge.log" "bridge: listening" || exit 1

cli "$admin" keys create --editor 2
editor=$(jq -r .token "$work/out")
# Four advertisers editor 2 may join, whose programmes take applications.
cli "$editor" advertisers list --editor 2
advs=($(jq -r '.advertisers[] | select(.status == "active") | .id' "$work/out" | head -4))
check "editor 2 may join four active advertisers" [ ${#advs[@]} = 4 ]

# Three reviews that always fail: each job dies after 2 attempts.
start_worker 100
apps=()
for a in "${advs[0]}" "${advs[1]}" "${advs[2]}"; do
	cli "$editor" applications apply --advertiser "$a"
	apps+=($(jq -r .id "$work/out"))
done
check "three applications made" [ "${#apps[@]}" = 3 ] && [ "${apps[2]}" != null ]
for id in "${apps[@]}"; do
	wait_status "$id" rejected || break
done
st=$(http "$admin" GET "/applications?editor_id=2")
check "three applications rejected by their dead jobs" bash -c \
	"[ $st = 200 ] && [ \"\$(jq -c '[.[] | [.id, .status, .reason]]' '$work/body')\" = \
	'[[${apps[0]},\"rejected\",\"review failed: the advertiser'\"'\"'s review service failed\"],[${apps[1]},\"rejected\",\"review failed: the advertiser'\"'\"'s review service failed\"],[${apps[2]},\"rejected\",\"review failed: the advertiser'\"'\"'s review service failed\"]]' ]"
kill -TERM "$worker_pid"
wait "$worker_pid"
# No worker now: this one's job stays queued.
cli "$editor" applications apply --advertiser "${advs[3]}"
queued_app=$(jq -r .id "$work/out")

cli "$admin" jobs list --state dead
check "affiliate jobs list --state dead: exit 0" [ $? = 0 ]
check "lists the three dead jobs, each with its application, attempts and last error" \
	[ "$(jq -c '[.jobs[] | [.application_id, .kind, .state, .attempts, .last_error]]' "$work/out")" = \
	"[[${apps[0]},\"review_application\",\"dead\",2,\"review failed: the advertiser's review service failed\"],[${apps[1]},\"review_application\",\"dead\",2,\"review failed: the advertiser's review service failed\"],[${apps[2]},\"review_application\",\"dead\",2,\"review failed: the advertiser's review service failed\"]]" ]
jobs=($(jq -r '.jobs[].id' "$work/out"))
cli "$admin" jobs list --state queued
check "--state queued: the application waiting for a worker" \
	[ "$(jq -c '[.jobs[] | [.application_id, .state, .attempts, .last_error]]' "$work/out")" = "[[$queued_app,\"queued\",0,\"\"]]" ]
queued_job=$(jq -r '.jobs[0].id' "$work/out")
cli "$admin" jobs list --state done
check "--state done: exit 1, INVALID_ARGUMENT" bash -c "[ $? = 1 ] && jq -e '.error.code == \"INVALID_ARGUMENT\"' '$work/out' >/dev/null"
cli "$admin" jobs list --state dead --limit 2
check "a page of 2 and its cursor" [ "$(jq -c '[[.jobs[].id], .next_after]' "$work/out")" = "[[${jobs[0]},${jobs[1]}],${jobs[1]}]" ]

st=$(http "$admin" GET "/jobs?state=dead")
check "GET /jobs?state=dead: 200, the same three with their last error" bash -c \
	"[ $st = 200 ] && [ \"\$(jq -c '[.[] | [.id, .application_id, .state, .last_error]]' '$work/body')\" = \
	'[[${jobs[0]},${apps[0]},\"dead\",\"review failed: the advertiser'\"'\"'s review service failed\"],[${jobs[1]},${apps[1]},\"dead\",\"review failed: the advertiser'\"'\"'s review service failed\"],[${jobs[2]},${apps[2]},\"dead\",\"review failed: the advertiser'\"'\"'s review service failed\"]]' ]"
st=$(http "$admin" GET "/jobs?state=dead&limit=1")
check "GET /jobs?state=dead&limit=1: one job and a Link to the next page" bash -c \
	"[ $st = 200 ] && [ \"\$(jq -c '[.[].id]' '$work/body')\" = '[${jobs[0]}]' ] && \
	curl -s -D - -o /dev/null -H 'Authorization: Bearer $admin' '$B/jobs?state=dead&limit=1' | \
	grep -qF 'Link: </jobs?state=dead&limit=1&after=${jobs[0]}>; rel=\"next\"'"

# Refusals: not an admin key, not dead, unknown.
for r in "GET /jobs" "POST /jobs/${jobs[0]}/retry" "POST /jobs/retry-dead"; do
	st=$(http "$editor" $r)
	check "$r with an editor's key: 403 PERMISSION_DENIED" bash -c \
		"[ $st = 403 ] && jq -e '.error.code == \"PERMISSION_DENIED\"' '$work/body' >/dev/null"
	st=$(http "" $r)
	check "$r without a key: 401 UNAUTHENTICATED" bash -c \
		"[ $st = 401 ] && jq -e '.error.code == \"UNAUTHENTICATED\"' '$work/body' >/dev/null"
done
cli "$editor" jobs retry "${jobs[0]}"
check "affiliate jobs retry with an editor's key: exit 1, PERMISSION_DENIED" bash -c \
	"[ $? = 1 ] && jq -e '.error.code == \"PERMISSION_DENIED\"' '$work/out' >/dev/null"
cli "$admin" jobs retry "$queued_job"
check "affiliate jobs retry of a queued job: exit 1, FAILED_PRECONDITION" bash -c \
	"[ $? = 1 ] && [ \"\$(jq -c .error.code,.error.message '$work/out' | tr '\n' ' ')\" = \
	'\"FAILED_PRECONDITION\" \"job $queued_job is not dead: only a dead job is retried\" ' ]"
st=$(http "$admin" POST "/jobs/$queued_job/retry")
check "POST /jobs/{queued}/retry: 400 FAILED_PRECONDITION" bash -c \
	"[ $st = 400 ] && jq -e '.error.code == \"FAILED_PRECONDITION\"' '$work/body' >/dev/null"
st=$(http "$admin" POST "/jobs/999999/retry")
check "POST /jobs/999999/retry: 404 NOT_FOUND" bash -c \
	"[ $st = 404 ] && jq -e '.error == {code: \"NOT_FOUND\", message: \"no job with id 999999\", request_id: .error.request_id}' '$work/body' >/dev/null"
st=$(http "$admin" POST "/jobs/x/retry")
check "POST /jobs/x/retry: 400" [ "$st" = 400 ]
st=$(http "$admin" GET "/jobs/retry-dead")
check "GET /jobs/retry-dead: 405" [ "$st" = 405 ]
cli "$admin" jobs retry
check "jobs retry without an ID: usage error (exit 2)" [ $? = 2 ]
cli "$admin" jobs retry 1 --all-dead
check "jobs retry ID --all-dead: usage error (exit 2)" [ $? = 2 ]
check "the refusals changed nothing: three dead, one queued" \
	[ "$(backend_sql "SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state" | tr '\n' ' ')" = "dead|3 queued|1 " ]

# Retried three ways.
cli "$admin" --request-id retry-first jobs retry "${jobs[0]}"
check "affiliate jobs retry ID: the job queued again, all attempts ahead, its last error kept" \
	[ "$(jq -c '[.id, .state, .attempts, .max_attempts, .last_error]' "$work/out")" = \
	"[${jobs[0]},\"queued\",0,2,\"review failed: the advertiser's review service failed\"]" ]
cp "$work/out" "$work/first"
cli "$admin" --request-id retry-first jobs retry "${jobs[0]}"
check "the same request again (its request_id): the first answer, not FAILED_PRECONDITION" \
	cmp -s "$work/out" "$work/first"
check "its application is pending again" [ "$(app_status "${apps[0]}")" = pending ]
st=$(http "$admin" POST "/jobs/${jobs[1]}/retry")
check "POST /jobs/{id}/retry: 202, the job queued" bash -c \
	"[ $st = 202 ] && [ \"\$(jq -c '[.id, .state]' '$work/body')\" = '[${jobs[1]},\"queued\"]' ]"
st=$(http "$admin" POST "/jobs/${jobs[1]}/retry")
check "the same again: 400 FAILED_PRECONDITION (queued, not dead)" [ "$st" = 400 ]
st=$(http "$admin" POST "/jobs/retry-dead")
check "POST /jobs/retry-dead: 202, the last dead job retried" bash -c \
	"[ $st = 202 ] && [ \"\$(jq -c .retried '$work/body')\" = 1 ]"
cli "$admin" jobs retry --all-dead
check "affiliate jobs retry --all-dead: none left" bash -c \
	"[ $? = 0 ] && [ \"\$(jq -c '.retried // 0' '$work/out')\" = 0 ]"
cli "$admin" jobs list --state dead
check "no dead job left" [ "$(jq -c '.jobs // [] | length' "$work/out")" = 0 ]
check "the retries are logged with the admin's key" bash -c \
	"grep -q 'jobs: job ${jobs[0]} (review_application ${apps[0]}) retried by key 1' '$work/server.log' && \
	grep -q 'jobs: 1 dead jobs retried (0 left dead' '$work/server.log'"

# A healthy worker decides them all again.
start_worker 0
for id in "${apps[@]}" "$queued_app"; do
	wait_status "$id" approved || break
done
st=$(http "$admin" GET "/applications?editor_id=2")
check "all four applications approved by a worker" bash -c \
	"[ $st = 200 ] && [ \"\$(jq -c '[.[] | [.id, .status]]' '$work/body')\" = \
	'[[${apps[0]},\"approved\"],[${apps[1]},\"approved\"],[${apps[2]},\"approved\"],[$queued_app,\"approved\"]]' ]"
cli "$admin" jobs list
check "every job done, at its first attempt after the retry" \
	[ "$(jq -c '[.jobs[] | [.state, .attempts]] | unique' "$work/out")" = '[["done",1]]' ]
check "the history: rejected, pending again (why), approved" \
	[ "$(backend_sql "SELECT status || ':' || reason FROM application_events WHERE application_id = ${apps[0]} ORDER BY id" | tr '\n' '|')" = \
	"pending:|rejected:review failed: the advertiser's review service failed|pending:review job ${jobs[0]} retried|approved:|" ]
tap_done
