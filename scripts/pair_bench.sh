#!/usr/bin/env bash
# Paired short runs (shared/BENCHMARKING.md, "Pairs, not runs") of the
# criterion micro-benchmarks a change touches: this checkout's ringloop
# against the same benchmark at a base commit (did the change cost
# anything?) and against its tokio twin, in alternating order.
#
# Usage: scripts/pair_bench.sh BASE_REV            # e.g. bda9813
#        PAIRS=10 BENCHES="core:spawn_join combinators:gather" scripts/pair_bench.sh BASE_REV
#
# Each round runs, for every benchmark, three short criterion runs (0.5 s
# warm-up, 1.5 s measurement): base ringloop, new ringloop, new tokio, the
# order of base and new flipped every other round. A pair ratio is
# new/base (or new/tokio) within one round; the summary is the median pair
# ratio and its interquartile range. Raw per-round figures are written to
# docs/bench/pairs/<date>-<bench>.tsv, the table to docs/bench/pairs.md
# and to stdout. (BENCHMARKS.md is written by scripts/bench_all.sh only,
# whose `micro` section pairs every ringloop id with its twin at one
# commit; this script answers "did my change cost anything?".)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BASE=${1:?usage: scripts/pair_bench.sh BASE_REV}
PAIRS=${PAIRS:-10}
# Each entry: target:group[:new_id[:twin_id[:base_id]]] (criterion ids inside
# the group; defaults ringloop, tokio, and new_id). Ids renamed since the
# base commit take the base's name as base_id (yield_many and gather had
# `ringloop`/`tokio` before their fair twins, docs/bench/twins.txt).
BENCHES=${BENCHES:-"core:spawn_join core:yield_many:ringloop_requeue:tokio_requeue:ringloop combinators:gather:ringloop_gather:tokio_spawn_vec_in_order:ringloop combinators:timeout_churn_ready combinators:timeout_churn_pending_once threadsafe:threadsafe_call threadsafe:threadsafe_wake"}
WT=${BASE_WORKTREE:-$ROOT/target/pair-base}
STAMP=$(date -u +%Y%m%d)
RAW=docs/bench/pairs
mkdir -p "$RAW"

log() { printf '[pair_bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# The bench binary of target $2 built in checkout $1 (from cargo's JSON).
bench_bin() {
    (cd "$1" && cargo bench --no-run --bench "$2" --message-format=json 2>/dev/null) |
        python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]==sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$2" | tail -1
}

if [ ! -d "$WT" ]; then
    git worktree add -q --detach "$WT" "$BASE"
fi
git -C "$WT" checkout -q --detach "$BASE"
BASE_SHA=$(git -C "$WT" rev-parse --short HEAD)
NEW_SHA=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src benches || echo "+dirty")

# One criterion run of exactly `group/function`; prints its point estimate in ns.
measure() {
    local bin=$1 id=$2 dir=$3
    local out
    out=$(cd "$dir" && "$bin" --bench --noplot --warm-up-time 0.5 --measurement-time 1.5 "^${id}\$" 2>&1)
    printf '%s\n' "$out" | python3 -c 'import re,sys
units={"ps":1e-3,"ns":1.0,"µs":1e3,"us":1e3,"ms":1e6,"s":1e9}
for l in sys.stdin:
    m=re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]",l)
    if m:
        print(float(m.group(1))*units[m.group(2)]); break
else:
    sys.exit("no criterion estimate in the output")'
}

declare -A BIN_NEW BIN_BASE
for spec in $BENCHES; do
    target=${spec%%:*}
    if [ -z "${BIN_NEW[$target]:-}" ]; then
        log "building bench $target (new and base $BASE_SHA)"
        BIN_NEW[$target]=$(bench_bin "$ROOT" "$target")
        BIN_BASE[$target]=$(bench_bin "$WT" "$target")
    fi
done

summary=$(mktemp)
for spec in $BENCHES; do
    IFS=: read -r target group new_id twin_id base_id <<<"$spec"
    new_id=${new_id:-ringloop}
    twin_id=${twin_id:-tokio}
    base_id=${base_id:-$new_id}
    raw="$RAW/$STAMP-$group.tsv"
    printf 'round\torder\tbase_ns\tnew_ns\ttokio_ns\tnew_over_base\tnew_over_tokio\n' >"$raw"
    for ((r = 1; r <= PAIRS; r++)); do
        if ((r % 2)); then
            b=$(measure "${BIN_BASE[$target]}" "$group/$base_id" "$WT")
            n=$(measure "${BIN_NEW[$target]}" "$group/$new_id" "$ROOT")
            order=base-new
        else
            n=$(measure "${BIN_NEW[$target]}" "$group/$new_id" "$ROOT")
            b=$(measure "${BIN_BASE[$target]}" "$group/$base_id" "$WT")
            order=new-base
        fi
        t=$(measure "${BIN_NEW[$target]}" "$group/$twin_id" "$ROOT")
        python3 -c 'import sys
r,o,b,n,t=sys.argv[1:]; b,n,t=float(b),float(n),float(t)
print(f"{r}\t{o}\t{b:.2f}\t{n:.2f}\t{t:.2f}\t{n/b:.4f}\t{n/t:.4f}")' "$r" "$order" "$b" "$n" "$t" >>"$raw"
        log "$group round $r: base $b ns, new $n ns, tokio $t ns"
    done
    python3 - "$raw" "$group" >>"$summary" <<'EOF'
import statistics, sys
path, group = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path)][1:]
def q(xs):
    xs = sorted(xs)
    qs = statistics.quantiles(xs, n=4, method="inclusive")
    return statistics.median(xs), qs[0], qs[2]
nb = q([float(r[5]) for r in rows]); nt = q([float(r[6]) for r in rows])
med = lambda i: statistics.median(float(r[i]) for r in rows)
print(f"| {group} | {med(2):.1f} | {med(3):.1f} | {med(4):.1f} | {nb[0]:.3f} ({nb[1]:.3f}–{nb[2]:.3f}) | {nt[0]:.3f} ({nt[1]:.3f}–{nt[2]:.3f}) | {len(rows)} | `{path}` |")
EOF
done

section=$(mktemp)
{
    echo "<!-- pair_bench:start (written by scripts/pair_bench.sh; do not edit by hand) -->"
    echo "## Paired checks"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); rustc $(rustc --version | cut -d' ' -f2); kernel $(uname -r)"
    echo "- new: ringloop at $NEW_SHA; base: ringloop at $BASE_SHA; tokio: the twin in the same bench binary"
    echo "- Command: \`PAIRS=$PAIRS scripts/pair_bench.sh $BASE\` ($PAIRS rounds; each round one short criterion run"
    echo "  (0.5 s warm-up, 1.5 s measurement) of base, new and tokio, base/new order flipped every other round)"
    echo "- Cells: median of the per-round figures (criterion's point estimate, ns per criterion iteration:"
    echo "  each bench's whole unit of work, e.g. 10,000 tasks for spawn_join; see benches/); ratios are"
    echo "  per-round new/base and new/tokio, median (interquartile range). A ratio whose range spans 1.0 is"
    echo "  \"no difference measurable here\"."
    echo
    echo "| bench | base ns | new ns | tokio ns | new/base | new/tokio | rounds | raw |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    cat "$summary"
    echo "<!-- pair_bench:end -->"
} >"$section"
cat "$section"
cp "$section" docs/bench/pairs.md
rm -f "$summary" "$section"
log "wrote docs/bench/pairs.md"
