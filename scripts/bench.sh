#!/usr/bin/env bash
# Measures bulkpatch in release mode: wall time, CPU and peak memory of the client process,
# against the built-in simulator (and a dry run with no network).
#
# usage: scripts/bench.sh [SCENARIO...]
#   scenarios: dry-run-1M unlimited-200k vs-oha latency-5k throttled-1k below-limit-30s run-1M
#              memory-growth report-100k tenants-6x60 tenants-200x50 graph-batch (default: all;
#              vs-oha, bulkpatch against oha and its bare HTTP client (examples/http_floor.rs),
#              needs `oha` on PATH: cargo install oha; tenants-*: a file grouped by customer
#              against limits per partner and per customer; graph-batch: --target graph with
#              --batch 20 against a limit per tenant)
#   BENCH_QUICK=1          divide every row count by 10 (a smoke run)
#   BENCH_NO_GNU_TIME=1    measure without /usr/bin/time even when it is there (tests the fallback)
#
# Needs: cargo, python3 (or awk) for the input files, Linux /proc. /usr/bin/time (Debian
# package `time`) is used when present; otherwise bash `times` plus VmHWM polled from /proc.
# Takes about 16 minutes on 2 cores, most of it tenants-200x50 (about 10) and throttled-1k
# (BENCH_QUICK=1: about 2 minutes), plus the build; leaves nothing behind.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the script too
export LC_ALL=C # a '.' decimal separator in EPOCHREALTIME, printf and awk

readonly ALL_SCENARIOS=(dry-run-1M unlimited-200k vs-oha latency-5k throttled-1k below-limit-30s run-1M memory-growth report-100k tenants-6x60 tenants-200x50 graph-batch)

usage() {
    sed -n '2,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

die() {
    echo "bench: $*" >&2
    exit 1
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# ---------------------------------------------------------------- arguments
scenarios=()
for arg in "$@"; do
    case $arg in
        -h | --help)
            usage
            exit 0
            ;;
        *)
            known=0
            for s in "${ALL_SCENARIOS[@]}"; do
                [[ $arg == "$s" ]] && known=1
            done
            ((known)) || die "unknown scenario '$arg' (known: ${ALL_SCENARIOS[*]})"
            scenarios+=("$arg")
            ;;
    esac
done
((${#scenarios[@]})) || scenarios=("${ALL_SCENARIOS[@]}")

div=1
[[ ${BENCH_QUICK:-0} == 1 ]] && div=10

use_gnu_time=0
if [[ ${BENCH_NO_GNU_TIME:-0} != 1 && -x /usr/bin/time ]] && /usr/bin/time -v true 2>/dev/null; then
    use_gnu_time=1
fi

# Nothing from the caller's environment may change how the client runs.
while read -r var; do
    unset "$var"
done < <(compgen -e | grep '^BULKPATCH_' || true)

# ---------------------------------------------------------------- build
echo "bench: cargo build --release" >&2
cargo build --release
cargo build --release --example http_floor # vs-oha's baseline: the bare HTTP client
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir=$repo/$target_dir
bin=$target_dir/release/bulkpatch
[[ -x $bin ]] || die "no binary at $bin"
floor_bin=$target_dir/release/examples/http_floor
[[ -x $floor_bin ]] || die "no binary at $floor_bin"

# ---------------------------------------------------------------- temp dir, cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulkpatch-bench.XXXXXX")
sim_pid=""
sim_url=""
token="bench-token-$$-$RANDOM"

stop_sim() {
    if [[ -n $sim_pid ]]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
        sim_pid=""
        sim_url=""
    fi
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_sim
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A file descriptor that never has data: `read -t` on it sleeps without starting a process
# (a `sleep` per poll would add its own CPU time to the measured CPU in the fallback).
exec {sleep_fd}<> <(:)
nap() { read -r -t "$1" -u "$sleep_fd" _ || true; }

now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
# calc EXPR [printf-format]: floating-point arithmetic through awk. The parentheses matter:
# without them, `printf "%d", a > b` is awk's output redirection to a file named b.
calc() { awk "BEGIN { printf \"${2:-%.2f}\", ($1) }"; }

# per_row CPU_S ROWS: client CPU microseconds per row (the column that shows a regression in the
# HTTP stack or the per-row work), or - when there is nothing to divide.
per_row() {
    if [[ $1 == - || $2 == 0 ]]; then
        echo -
    else
        calc "1000000 * $1 / $2" %.0f
    fi
}

clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
ncpu=$(nproc)

# cpu_ticks PID: user+system clock ticks used so far by a live process (0 when gone).
cpu_ticks() {
    local stat fields
    if ! read -r stat 2>/dev/null <"/proc/$1/stat"; then
        echo 0
        return
    fi
    stat=${stat##*) } # drop "pid (comm) ": field 3 (state) becomes fields[0]
    read -r -a fields <<<"$stat"
    echo $((fields[11] + fields[12]))
}

# ---------------------------------------------------------------- input files
# The customers of the generated inputs: how many, and whether the file is grouped by customer
# (sorted, in equal blocks, as an export is) or each row's customer drawn at random. A scenario
# that changes them sets them back.
input_customers=50
input_grouped=0

# input_file ROWS: the path of a generated CSV with ROWS unique (customer, user) rows, over
# $input_customers customers, grouped by customer when $input_grouped is 1.
input_file() {
    local rows=$1 n=$input_customers grouped=$input_grouped file
    # (An `if`, not `((grouped)) && ...`: under inherit_errexit a false test inside $(...)
    # would end the script, silently, for every ungrouped input.)
    local suffix=""
    if ((grouped)); then suffix=-grouped; fi
    file="$tmp/input-$rows-c$n$suffix.csv"
    if [[ ! -f $file ]]; then
        if command -v python3 >/dev/null; then
            local flags=(--customers "$n" --seed 1)
            if ((grouped)); then flags+=(--grouped); fi
            python3 "$repo/scripts/gen_csv.py" "$rows" "$file" "${flags[@]}"
        else
            # Same shape as gen_csv.py: the user GUID ends in the row number, so it is unique;
            # grouped: the customers sorted, customer k gets rows [k*rows/n, (k+1)*rows/n).
            awk -v rows="$rows" -v n="$n" -v grouped="$grouped" 'BEGIN {
                srand(1)
                split("US GB DE FR NL PL AT CH IT ES SE NO DK FI IE BE PT CZ HU RO JP AU NZ CA BR MX IN SG ZA AE", cc, " ")
                for (i = 0; i < n; i++)
                    cust[i] = sprintf("%08x-%04x-%04x-%04x-%06x%06x", rand() * 2^32, rand() * 2^16,
                        rand() * 2^16, rand() * 2^16, rand() * 2^24, rand() * 2^24)
                for (i = 1; grouped && i < n; i++) { # insertion sort (POSIX awk has no asort)
                    v = cust[i]
                    for (j = i - 1; j >= 0 && cust[j] > v; j--)
                        cust[j + 1] = cust[j]
                    cust[j + 1] = v
                }
                print "customer_id,user_id,usage_location"
                for (i = 0; i < rows; i++) {
                    k = grouped ? int(i * n / rows) : int(rand() * n)
                    printf "%s,%08x-%04x-%04x-%04x-%012x,%s\n", cust[k], rand() * 2^32,
                        rand() * 2^16, rand() * 2^16, rand() * 2^16, i, cc[1 + int(rand() * 30)]
                }
            }' >"$file"
        fi
    fi
    echo "$file"
}

# ---------------------------------------------------------------- simulator
# start_sim [SIMULATE FLAGS...]: a fresh simulator on a free port; sets sim_pid and sim_url.
start_sim() {
    stop_sim
    local log="$tmp/simulator.log" deadline port
    "$bin" simulate --port 0 --token "$token" "$@" >"$log" 2>&1 &
    sim_pid=$!
    deadline=$(calc "$(now) + 5" %.6f)
    while :; do
        kill -0 "$sim_pid" 2>/dev/null || {
            cat "$log" >&2
            die "the simulator exited at start ($*)"
        }
        if [[ -z $sim_url ]]; then
            sim_url=$(sed -n 's/^ *base URL: *//p' "$log")
        fi
        if [[ -n $sim_url ]]; then
            port=${sim_url##*:}
            port=${port%%/*}
            # Connect only (no request): the probe must not count against --throttle.
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                return 0
            fi
        fi
        [[ $(calc "$(now) > $deadline" %d) == 1 ]] && {
            cat "$log" >&2
            die "the simulator did not answer within 5 s"
        }
        nap 0.05
    done
}

# write_auth_config: a config whose [auth] redeems the running simulator's refresh token at its
# token endpoint (sets auth_config), for tokens per customer tenant.
write_auth_config() {
    local log="$tmp/simulator.log" refresh endpoint
    refresh=$(sed -n 's/^ *refresh token: *//p' "$log")
    endpoint=$(sed -n 's/^ *token endpoint: *//p' "$log")
    [[ -n $refresh && -n $endpoint ]] || die "the simulator printed no token endpoint"
    (umask 077 && printf '%s\n' "$refresh" >"$tmp/refresh-token")
    auth_config="$tmp/auth.toml"
    printf '[auth]\ntoken_url = "%s"\nclient_id = "bench-app"\nrefresh_token_file = "%s"\n' \
        "$endpoint" "$tmp/refresh-token" >"$auth_config"
}

# write_urls INPUT FILE: one URL per row of the CSV INPUT, for the running simulator (the URLs
#   hold its port, so a fresh simulator needs a fresh file).
write_urls() {
    awk -F, -v base="$sim_url" 'NR > 1 { print base "/v1/customers/" $1 "/users/" $2 }' "$1" >"$2"
}

# sim_stat KEY: a counter of the running simulator (GET /_simulator/stats, JSON), such as
#   `received` (requests, a `$batch` counting once) or `sub_throttled`.
sim_stat() {
    local port=${sim_url##*:} fd body
    port=${port%%/*}
    exec {fd}<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /_simulator/stats HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&"$fd"
    body=$(cat <&"$fd")
    exec {fd}>&-
    sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$body"
}

# ---------------------------------------------------------------- measuring
# measure NAME LIMIT_SECONDS CMD...: runs CMD (the bulkpatch client) with a time limit and sets
#   m_wall (s), m_cpu (user+sys s), m_rss_mb (peak RSS), m_rc (exit code; 124 = over the limit).
measure() {
    local name=$1 limit=$2
    shift 2
    local err="$tmp/$name.stderr" tf="$tmp/$name.time" t0 t1 user sys
    m_rc=0
    if ((use_gnu_time)); then
        # `timeout` inside `time`, so that its SIGTERM (a graceful stop for bulkpatch) reaches
        # bulkpatch. The rusage of `time`'s child includes its waited-for child, bulkpatch: CPU
        # adds timeout's (about 1 ms), and the peak RSS is the larger of the two, bulkpatch's.
        # --foreground keeps bulkpatch in the terminal's process group, so a Ctrl-C reaches it.
        t0=$(now)
        /usr/bin/time -v -o "$tf" timeout --foreground -k 10 -s TERM "$limit" "$@" 2>"$err" || m_rc=$?
        t1=$(now)
        local rss_kb
        user=$(sed -n 's/^[[:space:]]*User time (seconds): //p' "$tf")
        sys=$(sed -n 's/^[[:space:]]*System time (seconds): //p' "$tf")
        rss_kb=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$tf")
        m_cpu=$(calc "$user + $sys")
        m_rss_mb=$(calc "$rss_kb / 1024" %.1f)
    else
        # bash `time` would add the polling loop's own CPU (it counts the shell too); the
        # children's line of `times` before and after counts only the processes reaped in
        # between, which is bulkpatch alone (the loop starts none).
        local cpu0
        children_cpu
        cpu0=$children_cpu_s
        t0=$(now)
        poll_run "$limit" "$err" "$@"
        t1=$(now)
        children_cpu
        m_cpu=$(calc "$children_cpu_s - $cpu0")
        m_rss_mb=$(calc "$p_hwm_kb / 1024" %.1f)
        m_rc=$p_rc
    fi
    m_wall=$(calc "$t1 - $t0")
}

# children_cpu: sets children_cpu_s to the user+sys seconds of this shell's reaped children so
# far. Must not run in a command substitution: that is a new process, with no children yet.
children_cpu() {
    local line
    times >"$tmp/times"
    line=$(tail -n 1 "$tmp/times") # "0m1.234s 0m0.567s"
    children_cpu_s=$(awk -v l="$line" 'BEGIN {
        split(l, f, /[ms ]+/); printf "%.3f", f[1] * 60 + f[2] + f[3] * 60 + f[4]
    }')
}

# poll_run LIMIT ERRFILE CMD...: the fallback. Runs CMD in the background, reads its VmHWM
#   from /proc every 20 ms (the last reading before it exits), sends SIGTERM after LIMIT s
#   (SIGINT is ignored by a background job of a script) and SIGKILL 10 s later.
#   Sets p_hwm_kb and p_rc.
poll_run() {
    local limit=$1 err=$2
    shift 2
    "$@" 2>"$err" &
    local pid=$! start=$SECONDS key val rest
    p_hwm_kb=0
    while kill -0 "$pid" 2>/dev/null; do
        while read -r key val rest; do
            [[ $key == VmHWM: ]] && p_hwm_kb=$val
        done 2>/dev/null <"/proc/$pid/status" || true
        if ((SECONDS - start == limit)); then
            kill -TERM "$pid" 2>/dev/null || true
            start=$((start - 1)) # send it once
        elif ((SECONDS - start > limit + 10)); then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        nap 0.02
    done
    p_rc=0
    wait "$pid" || p_rc=$?
    ((SECONDS - start <= limit)) || p_rc=124
}

# json_top KEY FILE: a top-level number of the summary JSON (pretty-printed, 2-space indent);
# json_outcome KEY FILE: a count in its "outcomes" object (this run's rows).
json_top() { sed -n "s/^  \"$1\": \\([0-9.]*\\),\\{0,1\\}\$/\\1/p" "$2"; }
json_outcome() {
    sed -n '/^  "outcomes": {/,/^  }/p' "$2" | sed -n "s/^    \"$1\": \\([0-9.]*\\),\\{0,1\\}\$/\\1/p"
}

# ---------------------------------------------------------------- scenarios
table=()  # one line per measurement, fields separated by '|'
sim_path="" # appended to the simulator's URL for --base-url (its Graph routes: /graph/v1.0)
auth_config="" # when set: --config with a refresh token (tokens per tenant), no fixed token
notes=()
failed=0

# run_scenario LABEL ROWS IDEAL_S|- LIMIT_S MODE [CLIENT FLAGS...]
#   MODE: dry (no simulator) or net (uses the simulator already started).
run_scenario() {
    local label=$1 rows=$2 ideal=$3 limit=$4 mode=$5
    shift 5
    local input out summary expect sim0=0 sim1=0 sim_cpu=- share=- ratio=- rps
    input=$(input_file "$rows")
    out="$tmp/$label.results.csv"
    summary="$tmp/$label.summary.json"
    rm -f "$out" "$summary"
    local cmd=("$bin" run "$input" --out "$out" --summary-json "$summary" -q "$@")
    if [[ $mode == net ]]; then
        cmd+=(--base-url "$sim_url$sim_path")
        sim0=$(cpu_ticks "$sim_pid")
    fi
    echo "bench: $label: $rows rows ..." >&2
    if [[ -n $auth_config ]]; then
        cmd+=(--config "$auth_config")
        unset BULKPATCH_TOKEN # the script passes it per command; none may reach this run
        measure "$label" "$limit" "${cmd[@]}"
    else
        BULKPATCH_TOKEN=$token measure "$label" "$limit" "${cmd[@]}"
    fi
    if [[ $mode == net ]]; then
        sim1=$(cpu_ticks "$sim_pid")
        sim_cpu=$(calc "($sim1 - $sim0) / $clk_tck")
        notes+=("$label: simulator $(calc "100 * $sim_cpu / $m_wall" %.0f)% of one core, client $(calc "100 * $m_cpu / $m_wall" %.0f)%; together $(calc "100 * ($sim_cpu + $m_cpu) / $m_wall / $ncpu" %.0f)% of the machine's $ncpu CPUs")
    fi

    local done_rows=0 attempts=0 throttled=0
    if [[ -s $summary ]]; then
        if [[ $mode == dry ]]; then
            expect=planned
        else
            expect=updated
            attempts=$(json_top attempts "$summary")
            throttled=$(json_top throttled "$summary")
            attempts=${attempts:-0} throttled=${throttled:-0}
            share=$(calc "($attempts > 0) ? 100 * $throttled / $attempts : 0" %.1f)%
        fi
        done_rows=$(json_outcome "$expect" "$summary")
        done_rows=${done_rows:-0}
        if [[ $done_rows != "$rows" || $m_rc != 0 ]]; then
            notes+=("$label: FAILED? exit $m_rc, $expect $done_rows of $rows rows (its summary is printed above the table)")
            sed 's/^/    /' "$summary" >&2
            failed=1
        fi
    else
        notes+=("$label: FAILED: exit $m_rc, no summary; stderr: $(tail -n 3 "$tmp/$label.stderr" | tr '\n' ' ')")
        failed=1
    fi
    if ((m_rc == 124)); then
        notes+=("$label: stopped at its time limit of ${limit} s")
    fi
    if [[ $mode == net ]]; then
        notes+=("$label: $attempts requests, $throttled answered 429")
    fi

    if [[ $ideal != - ]]; then
        ratio=$(calc "$m_wall / $ideal")x
        ideal=$(calc "$ideal")
    fi
    rps=$(calc "$done_rows / $m_wall" %.0f)
    table+=("$label|$rows|$m_wall|$ideal|$ratio|$rps|$share|$m_cpu|$(per_row "$m_cpu" "$done_rows")|$m_rss_mb|$sim_cpu")
    rm -f "$out" # up to 200 MB for a million rows
}

for scenario in "${scenarios[@]}"; do
    case $scenario in
        dry-run-1M)
            run_scenario dry-run-1M $((1000000 / div)) - 120 dry --dry-run
            ;;
        unlimited-200k)
            start_sim
            run_scenario unlimited-200k $((200000 / div)) - 180 net --rate unlimited --concurrency 64
            stop_sim
            ;;
        latency-5k)
            start_sim --latency 150ms
            rows=$((5000 / div))
            ideal=$(calc "$rows * 0.15 / 32" %.4f)
            run_scenario latency-5k "$rows" "$ideal" "$(calc "$ideal * 3 + 30" %.0f)" net \
                --rate unlimited --concurrency 32
            stop_sim
            ;;
        throttled-1k)
            start_sim --throttle 20/s --throttle-burst 5
            rows=$((1000 / div))
            ideal=$(calc "$rows / 20" %.4f)
            # The limit allows 5x the ideal: the client reaches about a quarter of the throttle.
            run_scenario throttled-1k "$rows" "$ideal" "$(calc "$ideal * 5 + 10" %.0f)" net \
                --rate 200/s --concurrency 8
            stop_sim
            ;;
        below-limit-30s)
            # The ceiling below the server's limit: no 429 at all, and the configured rate held.
            start_sim --throttle 20/s --throttle-burst 5
            rows=$((450 / div))
            ideal=$(calc "$rows / 15" %.4f)
            run_scenario below-limit-30s "$rows" "$ideal" "$(calc "$ideal * 2 + 10" %.0f)" net \
                --rate 15/s --concurrency 8
            notes+=("below-limit-30s: held $(calc "($rows - 1) / ($m_wall) " %.2f)/s for a configured 15/s ($(calc "100 * (($rows - 1) / $m_wall - 15) / 15" %+.1f)%)")
            stop_sim
            ;;
        run-1M)
            # A real run of a million rows: memory must not grow with rows.
            start_sim
            run_scenario run-1M $((1000000 / div)) - 300 net --rate unlimited --concurrency 64
            stop_sim
            ;;
        vs-oha)
            # The same PATCHes as fast as oha (a pure HTTP load generator) can send them, against
            # the same simulator: bulkpatch's unlimited throughput should be at least 60% of oha's.
            # oha gets the input's URLs (one user each, as bulkpatch sends), not one URL over and
            # over: a simulator answers a user it has seen cheaper than a new one.
            # Between them, the HTTP floor (examples/http_floor.rs): bulkpatch's HTTP client
            # with its settings and requests, no per-row work. oha to floor is the HTTP
            # stack; floor to bulkpatch is bulkpatch's own work per row.
            if ! command -v oha >/dev/null 2>&1; then
                notes+=("vs-oha: skipped: oha is not on PATH (cargo install oha)")
                continue
            fi
            start_sim
            rows=$((200000 / div))
            input=$(input_file "$rows")
            urls="$tmp/oha-urls.txt"
            write_urls "$input" "$urls"
            echo "bench: vs-oha: oha, $rows requests ..." >&2
            oha_json="$tmp/oha.json"
            s0=$(cpu_ticks "$sim_pid")
            t0=$(now)
            oha -n "$rows" -c 64 --no-tui --output-format json -m PATCH \
                -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
                -d '{"usageLocation":"DE","attributes":{"objectType":"CustomerUser"}}' --urls-from-file "$urls" >"$oha_json" 2>/dev/null || true
            t1=$(now)
            s1=$(cpu_ticks "$sim_pid")
            oha_rps=$(sed -n 's/.*"requestsPerSec": *\([0-9.]*\).*/\1/p' "$oha_json" | head -n 1)
            oha_rps=${oha_rps:-$(calc "$rows / ($t1 - $t0)" %.0f)}
            table+=("oha|$rows|$(calc "$t1 - $t0")|-|-|$(calc "$oha_rps" %.0f)|-|-|-|-|$(calc "($s1 - $s0) / $clk_tck")")
            # A fresh simulator for each client: the same users, unseen again.
            start_sim
            write_urls "$input" "$urls"
            echo "bench: vs-oha: HTTP floor, $rows requests ..." >&2
            floor_out="$tmp/http-floor.out"
            s0=$(cpu_ticks "$sim_pid")
            # Its one line: requests=N seconds=S per_second=R failed=F
            measure http-floor 180 "$floor_bin" "$urls" 64 "$token" >"$floor_out"
            s1=$(cpu_ticks "$sim_pid")
            floor_rps=$(sed -n 's/.* per_second=\([0-9.]*\) .*/\1/p' "$floor_out")
            floor_failed=$(sed -n 's/.* failed=\([0-9]*\)$/\1/p' "$floor_out")
            if [[ $m_rc != 0 || -z $floor_rps ]]; then
                notes+=("vs-oha: http-floor: FAILED: exit $m_rc, ${floor_failed:-?} requests failed; stderr: $(tail -n 3 "$tmp/http-floor.stderr" | tr '\n' ' ')")
                failed=1
            fi
            floor_rps=${floor_rps:-$(calc "$rows / $m_wall" %.0f)}
            table+=("http-floor|$rows|$m_wall|-|-|$floor_rps|-|$m_cpu|$(per_row "$m_cpu" "$rows")|$m_rss_mb|$(calc "($s1 - $s0) / $clk_tck")")
            notes+=("vs-oha: the bare HTTP client (examples/http_floor.rs) $floor_rps requests/s = $(calc "100 * $floor_rps / $oha_rps" %.0f)% of oha's")
            start_sim
            run_scenario vs-oha "$rows" - 180 net --rate unlimited --concurrency 64
            notes+=("vs-oha: bulkpatch $(calc "$rows / $m_wall" %.0f) rows/s = $(calc "100 * $rows / $m_wall / $oha_rps" %.0f)% of oha's $(calc "$oha_rps" %.0f) requests/s (target: at least 60%)")
            notes+=("vs-oha: bulkpatch = $(calc "100 * $rows / $m_wall / $floor_rps" %.0f)% of the HTTP floor (the rest is its own work per row)")
            stop_sim
            ;;
        report-100k)
            # A real run's results file, then the HTML and Markdown reports from it (timed).
            start_sim
            rows=$((100000 / div))
            src="$tmp/report-src.results.csv"
            BULKPATCH_TOKEN=$token "$bin" run "$(input_file "$rows")" --out "$src" --force -q \
                --base-url "$sim_url" --rate unlimited --concurrency 64 2>/dev/null || true
            stop_sim
            echo "bench: report-100k: reports from $rows results ..." >&2
            measure report-100k 60 "$bin" report "$src" --html "$tmp/report.html" --markdown "$tmp/report.md"
            table+=("report-100k|$rows|$m_wall|-|-|$(calc "$rows / $m_wall" %.0f)|-|$m_cpu|$(per_row "$m_cpu" "$rows")|$m_rss_mb|-")
            [[ $m_rc == 0 && -s $tmp/report.html ]] || { notes+=("report-100k: FAILED: exit $m_rc"); failed=1; }
            rm -f "$src" "$src.meta"
            ;;
        tenants-6x60)
            # A file grouped by customer (6 x 60 rows) against 15/s per partner and 3/s per
            # customer (burst 5 each): the partner limit is the bound (6 x 3/s = 18/s > 15/s),
            # but only when rows of several customers are in flight at once. Ideal = rows / 15.
            # Run twice: the ceiling alone, then with the per-customer limit given as a hint.
            start_sim --throttle 15/s --customer-throttle 3/s --throttle-burst 5
            input_customers=6 input_grouped=1
            rows=$((360 / div))
            ideal=$(calc "$rows / 15" %.4f)
            limit=$(calc "$ideal * 8 + 10" %.0f)
            run_scenario tenants-6x60 "$rows" "$ideal" "$limit" net --rate 200/s --concurrency 8
            # A fresh simulator: the same users, unseen, and its buckets full again.
            start_sim --throttle 15/s --customer-throttle 3/s --throttle-burst 5
            run_scenario tenants-6x60+pcr "$rows" "$ideal" "$limit" net --rate 200/s \
                --per-customer-rate 3/s --concurrency 8
            notes+=("tenants-6x60: 6 customers, grouped; simulator 15/s per partner, 3/s per customer; +pcr: with --per-customer-rate 3/s (target: each within 1.25x the ideal, 429 under 5%)")
            input_customers=50 input_grouped=0
            stop_sim
            ;;
        tenants-200x50)
            # 200 customers x 50 rows, grouped, against 20/s per partner and 2/s per customer:
            # many tenants, each far slower than the partner. Ideal = rows / 20 (500 s).
            start_sim --throttle 20/s --customer-throttle 2/s --throttle-burst 5
            input_customers=200 input_grouped=1
            rows=$((10000 / div))
            ideal=$(calc "$rows / 20" %.4f)
            run_scenario tenants-200x50 "$rows" "$ideal" "$(calc "$ideal * 4 + 30" %.0f)" net \
                --rate 200/s --concurrency 8
            notes+=("tenants-200x50: 200 customers, grouped; simulator 20/s per partner, 2/s per customer (target: within 1.25x the ideal)")
            input_customers=50 input_grouped=0
            stop_sim
            ;;
        graph-batch)
            # 5 tenants x 400 rows, grouped, through Microsoft Graph with --batch 20 against 20
            # writes/s per tenant (each $batch sub-request counts; burst 20). Ideal = 400 / 20 s
            # (the tenants in parallel). Requests per row = $batch requests / rows.
            start_sim --graph-throttle 20/s --throttle-burst 20 --oauth-client-id bench-app \
                --token-lifetime 1h
            write_auth_config
            input_customers=5 input_grouped=1 sim_path=/graph/v1.0
            rows=$((2000 / div))
            ideal=$(calc "$rows / 5 / 20" %.4f)
            run_scenario graph-batch "$rows" "$ideal" "$(calc "$ideal * 8 + 30" %.0f)" net \
                --target graph --batch 20 --rate 200/s --concurrency 8
            envelopes=$(sim_stat received)
            subs=$(sim_stat sub_requests)
            sub429=$(sim_stat sub_throttled)
            notes+=("graph-batch: ${envelopes:-?} \$batch requests for $rows rows: $(calc "${envelopes:-0} / $rows" %.3f) requests per row; ${sub429:-?} of ${subs:-?} sub-requests answered 429 ($(calc "(${subs:-0} > 0) ? 100 * ${sub429:-0} / ${subs:-1} : 0" %.1f)%) (target: within 1.2x the ideal, under 5% throttled)")
            notes+=("graph-batch: tokens per customer tenant (GDAP) from the simulator's token endpoint; each tenant has its own 20/s bucket")
            input_customers=50 input_grouped=0 sim_path="" auth_config=""
            stop_sim
            ;;
        memory-growth)
            small=$((100000 / div))
            large=$((1000000 / div))
            run_scenario memory-growth "$small" - 120 dry --dry-run
            rss_small=$m_rss_mb
            run_scenario memory-growth "$large" - 120 dry --dry-run
            notes+=("memory-growth: peak RSS ${rss_small} MB at $small rows, ${m_rss_mb} MB at $large rows ($(calc "$m_rss_mb / $rss_small" %.1f)x for 10x the rows)")
            ;;
    esac
done

# ---------------------------------------------------------------- report
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown ]] && ! git diff --quiet HEAD -- 2>/dev/null; then
    commit="$commit (with uncommitted changes)"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo
echo "bulkpatch benchmark  $(date -u +%Y-%m-%dT%H:%MZ)"
echo "  machine: $ncpu CPUs, ${cpu_model:-unknown CPU model}, $(awk '/^MemTotal/ { printf "%.0f GB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "  commit:  $commit; $("$bin" --version)"
if ((use_gnu_time)); then
    echo "  measured with /usr/bin/time -v (CPU and peak RSS of the client process)"
else
    echo "  note: /usr/bin/time not used (apt package 'time'): CPU from bash 'times', peak RSS = VmHWM polled every 20 ms (low for runs under ~0.1 s)"
fi
((div == 1)) || echo "  BENCH_QUICK=1: row counts divided by $div"
echo
fmt='%-16s %9s %8s %8s %7s %9s %7s %7s %7s %8s %8s\n'
# shellcheck disable=SC2059 # the format is the constant above
printf "$fmt" scenario rows "wall s" "ideal s" ratio "rows/s" "429" "CPU s" "us/row" "RSS MB" "sim CPU"
for line in "${table[@]}"; do
    IFS='|' read -r -a f <<<"$line"
    # shellcheck disable=SC2059
    printf "$fmt" "${f[@]}"
done
echo
echo "wall: the client process, start to exit; rows/s: rows done / wall; 429: share of requests"
echo "answered 429; CPU s: user+sys of the client; us/row: that CPU per row done, in microseconds;"
echo "RSS MB: the client's peak; sim CPU: simulator CPU s."
if ((${#notes[@]})); then
    echo
    printf '  %s\n' "${notes[@]}"
fi
exit "$failed"
